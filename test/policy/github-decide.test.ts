import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TagboxError } from '../../src/errors.js';
import { parseBundleFile } from '../../src/policy/bundle-file.js';
import { compilePolicy, type EgressPolicy } from '../../src/policy/compile.js';
import { decide, type Decision } from '../../src/policy/decide.js';
import { req } from './fixtures.js';

function policyOf(yaml: string): EgressPolicy {
  return compilePolicy(parseBundleFile(yaml, 'bundles.yaml').bundles);
}

function compileError(yaml: string): TagboxError {
  try {
    policyOf(yaml);
  } catch (error) {
    expect(error).toBeInstanceOf(TagboxError);
    expect((error as TagboxError).exitCode).toBe(2);
    return error as TagboxError;
  }
  throw new Error('expected the bundles not to compile');
}

const ONE = `bundles:
  - name: eng
    connections:
      - name: github
        secret: gh-app
        github:
          repositories: [acme/Widgets]
          permissions: {contents: write, pull_requests: write}
`;
const policy = policyOf(ONE);
const at = (host: string, path: string, method = 'GET', port = 443): Decision => decide(policy, req(host, path, method, port));

const GIT_INJECTION = {
  basic: { username: 'x-access-token' },
  secret: 'gh-app',
  mint: { repositories: ['Widgets'], permissions: { contents: 'write', pull_requests: 'write' } },
  github: { service: 'git', pushBranches: 'tagbox/*' },
};
const API_INJECTION = {
  header: 'Authorization',
  value: 'Bearer {{secret}}',
  secret: 'gh-app',
  mint: { repositories: ['Widgets'], permissions: { contents: 'write', pull_requests: 'write' } },
  github: { service: 'api', pushBranches: 'tagbox/*' },
};

describe('a GitHub App connection: github.com gets the token for git only, as basic x-access-token', () => {
  it('a clone of one of its repositories gets the credential, with the mint narrowing and push settings', () => {
    expect(at('github.com', '/acme/widgets.git/info/refs?service=git-upload-pack')).toEqual({
      outcome: 'credential',
      reason: 'host github.com matches connection eng/github (github.com, git, repositories acme/Widgets)',
      rule: 'github.com',
      bundle: 'eng',
      connection: 'github',
      inject: GIT_INJECTION,
      host: 'github.com',
    });
  });

  it.each([
    ['GET', '/acme/widgets/info/refs'],
    ['HEAD', '/acme/widgets/info/refs'],
    ['GET', '/acme/widgets/info/refs?service=git-receive-pack'],
    ['POST', '/acme/widgets/git-upload-pack'],
    ['POST', '/acme/widgets.git/git-receive-pack'],
    ['POST', '/ACME/WIDGETS/git-receive-pack'],
    ['POST', '/Acme/Widgets.git/git-receive-pack'],
    ['POST', '/acme/other/../widgets/git-receive-pack'],
    ['POST', '/acme/wid%67ets/git-receive-pack'],
    ['POST', '/acme/widgets/git-receive-pack?to=/acme/other'],
  ])('%s %s: credential', (method, path) => {
    const d = at('github.com', path, method);
    expect(d.outcome).toBe('credential');
    expect(d.inject).toEqual(GIT_INJECTION);
  });

  it.each(['GitHub.COM', 'github.com.', 'GITHUB.COM.'])('whatever the host\'s case or trailing dot (%s)', (host) => {
    expect(at(host, '/acme/widgets/git-receive-pack', 'POST')).toMatchObject({ outcome: 'credential', host: 'github.com', inject: GIT_INJECTION });
  });

  it.each([
    ['GET', '/acme/widgets'],
    ['GET', '/acme/widgets/pull/1'],
    ['GET', '/acme/widgets/archive/refs/heads/main.zip'],
    ['GET', '/acme/widgets/raw/main/README.md'],
    ['GET', '/'],
    ['POST', '/login/oauth/access_token'],
    ['POST', '/acme/widgets.git/info/lfs/objects/batch'],
    ['GET', '/acme/widgets/git-receive-pack'],
    ['POST', '/acme/widgets/info/refs'],
    ['post', '/acme/widgets/git-receive-pack'],
    ['POST', '/acme/widgets/git-receive-pack/'],
    ['POST', '/acme/widgets%2Fgit-receive-pack'],
    ['POST', '/acme/../widgets/git-receive-pack'],
  ])('%s %s is not git: forwarded without the credential (allowlist)', (method, path) => {
    const d = at('github.com', path, method);
    expect(d.outcome).toBe('allowlist');
    expect(d.inject).toBeUndefined();
    expect(d.reason).toMatch(/^host github\.com is allowed by eng\/github \(allowedWebsites: github\.com\); outside the narrowing of eng\/github \(.* is not a git smart-HTTP request \(the token goes to github\.com for git only\)\), so no credential$/);
  });

  it.each([
    ['POST', '/acme/other/git-receive-pack', 'acme/other'],
    ['GET', '/acme/widgets-evil/info/refs', 'acme/widgets-evil'],
    ['POST', '/evil/widgets.git/git-receive-pack', 'evil/widgets'],
    ['POST', '/acme/widgets/../other/git-receive-pack', 'acme/other'],
    ['POST', '/acme/widgets.GIT/git-receive-pack', 'acme/widgets.GIT'],
  ])('%s %s: another repository gets no credential', (method, path, repo) => {
    const d = at('github.com', path, method);
    expect(d.outcome).toBe('allowlist');
    expect(d.inject).toBeUndefined();
    expect(d.reason).toContain(`(repository ${repo} is not one of acme/widgets), so no credential`);
  });

  it('plain http: a git request that would carry the token is blocked, a page is allowed', () => {
    const d = at('github.com', '/acme/widgets/info/refs', 'GET', 80);
    expect(d.outcome).toBe('blocked');
    expect(d.inject).toBeUndefined();
    expect(d.reason).toMatch(/whose credential is only sent over TLS/);
    expect(at('github.com', '/acme/widgets', 'GET', 80).outcome).toBe('allowlist');
  });

  it('other ports are blocked', () => {
    expect(at('github.com', '/acme/widgets/info/refs', 'GET', 8443).outcome).toBe('blocked');
  });
});

describe('a GitHub App connection: api.github.com gets Authorization: Bearer', () => {
  it('a pull request on one of its repositories gets the bearer credential', () => {
    expect(at('api.github.com', '/repos/acme/widgets/pulls', 'POST')).toEqual({
      outcome: 'credential',
      reason: 'host api.github.com matches connection eng/github (api.github.com, REST API, repositories acme/Widgets)',
      rule: 'api.github.com',
      bundle: 'eng',
      connection: 'github',
      inject: API_INJECTION,
      host: 'api.github.com',
    });
  });

  it.each([
    ['GET', '/repos/acme/widgets'],
    ['GET', '/repos/ACME/WIDGETS/pulls/1'],
    ['PATCH', '/repos/acme/widgets/pulls/1'],
    ['POST', '/repos/acme/widgets/issues/3/comments'],
    ['POST', '/repos/acme/widgets/git/commits'],
    ['GET', '/repos/acme/widgets/contents/README.md?ref=main'],
    ['GET', '/repos/other/x/../../acme/widgets'],
  ])('%s %s: credential (reads, and the writes a pull request needs)', (method, path) => {
    expect(at('api.github.com', path, method)).toMatchObject({ outcome: 'credential', inject: API_INJECTION });
  });

  it.each([
    ['GET', '/repos/acme/other/pulls', /repository acme\/other is not one of acme\/widgets/],
    ['GET', '/repos/acme/widgets-evil', /repository acme\/widgets-evil is not one of/],
    ['GET', '/user', /path \/user is not about one of the repositories acme\/widgets/],
    ['POST', '/graphql', /path \/graphql is not about one of the repositories/],
    ['GET', '/repositories/1', /is not about one of the repositories/],
    ['GET', '/repos/acme/widgets%2F..%2Fother', /is not about one of the repositories/],
    ['GET', '/repos/acme/widgets/../other', /repository acme\/other is not one of/],
    ['POST', '/app/installations/1/access_tokens', /is not about one of the repositories/],
  ])('%s %s: no credential', (method, path, why) => {
    const d = at('api.github.com', path, method);
    expect(d.outcome).toBe('allowlist');
    expect(d.inject).toBeUndefined();
    expect(d.reason).toMatch(why);
  });

  it('plain http to the API with the token is blocked', () => {
    expect(at('api.github.com', '/repos/acme/widgets', 'GET', 80).outcome).toBe('blocked');
  });

  it('GitHub\'s other hosts are not reached at all', () => {
    for (const host of ['gist.github.com', 'uploads.github.com', 'raw.githubusercontent.com', 'objects.githubusercontent.com', 'github.com.evil.example', 'codeload.github.com']) {
      expect(at(host, '/acme/widgets/info/refs').outcome).toBe('blocked');
    }
  });

  it('the injection is frozen (decisions share it)', () => {
    const d = at('api.github.com', '/repos/acme/widgets');
    expect(Object.isFrozen(d.inject)).toBe(true);
    expect(Object.isFrozen(d.inject!.mint)).toBe(true);
  });
});

describe('a GitHub App connection: REST writes that could move a branch are refused (branches move by git push only)', () => {
  it.each([
    ['DELETE', '/repos/acme/widgets/git/refs/heads/x'],
    ['PATCH', '/repos/acme/widgets/git/refs/heads/main'],
    ['POST', '/repos/acme/widgets/git/refs'],
    ['PUT', '/repos/acme/widgets/contents/README.md'],
    ['DELETE', '/repos/acme/widgets/contents/README.md'],
    ['PUT', '/repos/acme/widgets/pulls/1/merge'],
    ['POST', '/repos/acme/widgets/merges'],
    ['POST', '/repos/acme/widgets/pulls/1/reviews'],
    ['PUT', '/repos/acme/widgets/pulls/1/update-branch'],
    ['PATCH', '/repos/acme/widgets'],
    ['POST', '/repos/acme/widgets/dispatches'],
    ['POST', '/repos/acme/widgets/pulls/1'],
    ['PATCH', '/repos/acme/widgets/pulls'],
  ])('%s %s: blocked, with the reason', (method, path) => {
    const d = at('api.github.com', path, method);
    expect(d.outcome).toBe('blocked');
    expect(d.reason).toBe(
      `host api.github.com matches connection eng/github (api.github.com, REST API, repositories acme/Widgets), but ${method} ${path} is not one of the writes the GitHub App token is sent with (pull requests, issues, comments, git objects); branches and tags change only by git push, under the push policy`,
    );
    expect(d).toMatchObject({ bundle: 'eng', connection: 'github', rule: 'api.github.com' });
    expect(d.inject).toBeUndefined();
  });
});

describe('a GitHub App connection: settings carried into the decision', () => {
  it('without repositories: every repository and every API path, and no mint narrowing', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        github: {}\n');
    for (const path of ['/anyone/anything/git-receive-pack', '/acme/widgets.git/git-upload-pack']) {
      expect(decide(p, req('github.com', path, 'POST'))).toMatchObject({ outcome: 'credential', inject: { basic: { username: 'x-access-token' }, secret: 'gh-app', mint: {}, github: { service: 'git', pushBranches: 'tagbox/*' } } });
    }
    expect(decide(p, req('github.com', '/acme/widgets')).outcome).toBe('allowlist');
    for (const path of ['/user', '/repos/x/y/pulls']) {
      const d = decide(p, req('api.github.com', path, path === '/user' ? 'GET' : 'POST'));
      expect(d.outcome).toBe('credential');
      expect(d.inject).toEqual({ header: 'Authorization', value: 'Bearer {{secret}}', secret: 'gh-app', mint: {}, github: { service: 'api', pushBranches: 'tagbox/*' } });
    }
    // GraphQL mutations could move a branch: refused; and a sandbox cannot mint a token of its own.
    expect(decide(p, req('api.github.com', '/graphql', 'POST')).reason).toMatch(/GraphQL is not sent with the GitHub App token/);
    expect(decide(p, req('api.github.com', '/app/installations/1/access_tokens', 'POST')).outcome).toBe('blocked');
    expect(decide(p, req('github.com', '/x/y/info/refs')).reason).toBe('host github.com matches connection eng/github (github.com, git)');
  });

  it('permissions only: the mint has permissions and no repositories', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        github: {permissions: {contents: read}}\n');
    expect(decide(p, req('github.com', '/a/b/info/refs')).inject?.mint).toEqual({ permissions: { contents: 'read' } });
  });

  it('repositories only: the mint has the names (the owner is the installation\'s), as written', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        github: {repositories: [Acme/One, acme/two]}\n');
    expect(decide(p, req('api.github.com', '/repos/acme/one')).inject?.mint).toEqual({ repositories: ['One', 'two'] });
    expect(decide(p, req('github.com', '/acme/TWO/info/refs')).inject?.mint).toEqual({ repositories: ['One', 'two'] });
  });

  it('pushBranches, {thread} included, goes to both rules unexpanded', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        github: {pushBranches: "agent/{thread}/*"}\n');
    expect(decide(p, req('github.com', '/a/b/git-receive-pack', 'POST')).inject?.github).toEqual({ service: 'git', pushBranches: 'agent/{thread}/*' });
    expect(decide(p, req('api.github.com', '/repos/a/b/pulls', 'POST')).inject?.github).toEqual({ service: 'api', pushBranches: 'agent/{thread}/*' });
  });

  it('allowedWebsites: [github.com] only: no API rule, and api.github.com is not reached', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        allowedWebsites: [github.com]\n        github: {}\n');
    expect(decide(p, req('github.com', '/a/b/info/refs')).outcome).toBe('credential');
    expect(decide(p, req('api.github.com', '/repos/a/b')).outcome).toBe('blocked');
  });

  it('allowedWebsites: [api.github.com] only: github.com is not reached', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        allowedWebsites: [api.github.com]\n        github: {}\n');
    expect(decide(p, req('api.github.com', '/repos/a/b')).inject?.github?.service).toBe('api');
    expect(decide(p, req('github.com', '/a/b/info/refs')).outcome).toBe('blocked');
  });

  it('ports given in allowedWebsites are kept', () => {
    const p = policyOf('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        allowedWebsites: [{host: github.com, ports: [443]}]\n        github: {}\n');
    expect(decide(p, req('github.com', '/a/b/info/refs')).outcome).toBe('credential');
    expect(decide(p, req('github.com', '/a/b', 'GET', 80)).reason).toMatch(/on ports 443, not on port 80/);
  });

  it('an injection a bundle would not allow for GitHub never comes out of compile, whatever Connection says', () => {
    // A stored Connection (the store keeps the normalised form) carries inject: basic; compile chooses per host.
    const bundles = parseBundleFile('bundles:\n  - name: eng\n    connections:\n      - name: github\n        secret: gh-app\n        github: {}\n', 'b').bundles;
    bundles[0]!.connections[0]!.inject = { header: 'X-Leak', value: '{{secret}}' };
    const p = compilePolicy(bundles);
    expect(decide(p, req('github.com', '/a/b/info/refs')).inject).toMatchObject({ basic: { username: 'x-access-token' } });
    expect(decide(p, req('api.github.com', '/repos/a/b')).inject).toMatchObject({ header: 'Authorization', value: 'Bearer {{secret}}' });
  });
});

describe('two GitHub App connections on the same hosts', () => {
  const TWO = (a: string, b: string, sameBundle = true) => `bundles:
  - name: eng
    connections:
      - name: widgets
        secret: gh-widgets
        github: {repositories: [${a}], pushBranches: "w/*"}
${sameBundle ? '' : `  - name: ops
    connections:
`}      - name: gears
        secret: gh-gears
        github: {repositories: [${b}], permissions: {contents: read}}
`;

  it.each([true, false])('with disjoint repositories compile, and each repository picks its own (same bundle: %s)', (sameBundle) => {
    const p = policyOf(TWO('acme/widgets', 'acme/gears, acme/cogs', sameBundle));
    const git = (path: string) => decide(p, req('github.com', path, 'POST'));
    const api = (path: string) => decide(p, req('api.github.com', path, 'POST'));
    expect(git('/acme/widgets/git-receive-pack')).toMatchObject({ outcome: 'credential', connection: 'widgets', inject: { secret: 'gh-widgets', mint: { repositories: ['widgets'] }, github: { service: 'git', pushBranches: 'w/*' } } });
    expect(git('/ACME/Gears.git/git-receive-pack')).toMatchObject({ outcome: 'credential', connection: 'gears', inject: { secret: 'gh-gears', mint: { repositories: ['gears', 'cogs'], permissions: { contents: 'read' } }, github: { pushBranches: 'tagbox/*' } } });
    expect(git('/acme/cogs/git-upload-pack')).toMatchObject({ outcome: 'credential', connection: 'gears' });
    expect(api('/repos/acme/widgets/pulls')).toMatchObject({ outcome: 'credential', connection: 'widgets', inject: { header: 'Authorization', secret: 'gh-widgets' } });
    expect(api('/repos/acme/cogs/pulls')).toMatchObject({ outcome: 'credential', connection: 'gears', inject: { header: 'Authorization', secret: 'gh-gears' } });
    // a third repository, or a path about none, gets neither
    expect(git('/acme/other/git-receive-pack')).toMatchObject({ outcome: 'allowlist' });
    expect(git('/acme/other/git-receive-pack').inject).toBeUndefined();
    expect(api('/user').outcome).toBe('allowlist');
    expect(decide(p, req('github.com', '/acme/widgets')).outcome).toBe('allowlist');
  });

  it('each repository goes to its connection, whatever order they are given in (property)', () => {
    const p = policyOf(TWO('acme/widgets', 'acme/gears'));
    fc.assert(
      fc.property(fc.constantFrom('widgets', 'Widgets', 'gears', 'GEARS', 'cogs', 'widgets-x'), fc.boolean(), (name, dotGit) => {
        const d = decide(p, req('github.com', `/acme/${name}${dotGit ? '.git' : ''}/git-upload-pack`, 'POST'));
        const expected = { widgets: 'widgets', gears: 'gears' }[name.toLowerCase()];
        expect(d.outcome).toBe(expected ? 'credential' : 'allowlist');
        expect(d.outcome === 'credential' ? d.connection : undefined).toBe(expected);
      }),
    );
  });

  it.each([
    ['the same repository', 'acme/widgets', 'acme/widgets'],
    ['the same repository in another case', 'acme/Widgets', 'ACME/widgets'],
    ['one shared repository', 'acme/widgets, acme/a', 'acme/b, acme/widgets'],
  ])('with overlapping repositories (%s) are ambiguous', (_what, a, b) => {
    expect(compileError(TWO(a, b)).message).toBe(
      'ambiguous connections: eng/widgets and eng/gears both match github.com with no path prefix; give each GitHub App connection its own github.repositories (no repository in both) or remove one',
    );
  });

  it('the ambiguity between two GitHub App connections gives advice they can follow (not narrow)', () => {
    const message = compileError(TWO('acme/widgets', 'acme/widgets')).message;
    expect(message).not.toMatch(/narrow\./);
    expect(message).toMatch(/repositories/);
  });

  it('in different bundles, overlapping is ambiguous too', () => {
    expect(compileError(TWO('acme/widgets', 'acme/widgets', false)).message).toMatch(/^ambiguous connections: eng\/widgets and ops\/gears both match github\.com/);
  });

  it('one for every repository and one for some are ambiguous, in either order', () => {
    const yaml = (first: string, second: string) => `bundles:
  - name: eng
    connections:
      - name: one
        secret: gh-one
        github: ${first}
      - name: two
        secret: gh-two
        github: ${second}
`;
    expect(compileError(yaml('{}', '{repositories: [acme/widgets]}')).message).toMatch(/^ambiguous connections: eng\/one and eng\/two/);
    expect(compileError(yaml('{repositories: [acme/widgets]}', '{}')).message).toMatch(/^ambiguous connections: eng\/one and eng\/two/);
    expect(compileError(yaml('{}', '{}')).message).toMatch(/^ambiguous connections/);
  });

  it('on hosts that do not overlap they are not ambiguous', () => {
    const p = policyOf(`bundles:
  - name: eng
    connections:
      - name: git
        secret: gh-one
        allowedWebsites: [github.com]
        github: {}
      - name: api
        secret: gh-two
        allowedWebsites: [api.github.com]
        github: {}
`);
    expect(decide(p, req('github.com', '/a/b/info/refs')).connection).toBe('git');
    expect(decide(p, req('api.github.com', '/repos/a/b')).connection).toBe('api');
  });

  it('a GitHub App connection and an ordinary one on the same host are ambiguous (the ordinary one has no repositories)', () => {
    const e = compileError(`bundles:
  - name: eng
    connections:
      - name: app
        secret: gh-app
        github: {repositories: [acme/widgets]}
      - name: pat
        secret: gh-pat
        allowedWebsites: [api.github.com]
        inject: {header: Authorization, value: "token {{secret}}"}
`);
    expect(e.message).toMatch(/^ambiguous connections: eng\/app and eng\/pat both match api\.github\.com with no path prefix/);
  });
});
