import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TagboxError } from '../../src/errors.js';
import { parseBundleFile, validateBundles, validatePersonalConnector } from '../../src/policy/bundle-file.js';
import type { Connection } from '../../src/policy/bundle-schema.js';
import { DEFAULT_PUSH_BRANCHES, GITHUB_API_HOST, GITHUB_GIT_HOST, GITHUB_GIT_USERNAME, githubSettingsSchema, mintRepositories } from '../../src/policy/github-settings.js';
import { loadBundleFile } from '../../src/policy/load-bundle-file.js';

/** The messages of the issues githubSettingsSchema finds in `input`, or [] when it is valid. */
function problems(input: unknown): string[] {
  const r = githubSettingsSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => i.message);
}

function parsed(input: unknown) {
  const r = githubSettingsSchema.safeParse(input);
  if (!r.success) throw new Error(`expected valid settings: ${r.error.message}`);
  return r.data;
}

/** A one-bundle, one-connection file; `lines` are the connection's YAML keys. */
function file(lines: string): string {
  return `bundles:
  - name: team
    connections:
      - name: gh
${lines
  .trim()
  .split('\n')
  .map((l) => `        ${l}`)
  .join('\n')}
`;
}

function connectionOf(lines: string): Connection {
  return parseBundleFile(file(lines), 'bundles.yaml').bundles[0]!.connections[0]!;
}

function errorOf(lines: string): string {
  try {
    parseBundleFile(file(lines), 'bundles.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(TagboxError);
    expect((error as TagboxError).exitCode).toBe(2);
    return (error as TagboxError).message;
  }
  throw new Error('expected the bundle file to be rejected');
}

const WHERE = 'bundle "team", connection "gh": bundles[0].connections[0]';

describe('githubSettingsSchema: defaults and shape', () => {
  it('fills pushBranches with tagbox/* and nothing else', () => {
    expect(DEFAULT_PUSH_BRANCHES).toBe('tagbox/*');
    expect(parsed({})).toEqual({ pushBranches: 'tagbox/*' });
  });

  it('keeps repositories (as written), permissions and pushBranches', () => {
    expect(parsed({ repositories: ['Acme/Widgets', 'acme/gears'], permissions: { contents: 'write', pull_requests: 'read' }, pushBranches: 'agent/{thread}' })).toEqual({
      repositories: ['Acme/Widgets', 'acme/gears'],
      permissions: { contents: 'write', pull_requests: 'read' },
      pushBranches: 'agent/{thread}',
    });
  });

  it.each([[{ repo: ['acme/x'] }], [{ pushbranches: 'x/*' }], [{ secret: 'x' }]])('refuses unknown keys: %j', (input) => {
    expect(githubSettingsSchema.safeParse(input).success).toBe(false);
  });

  it.each([[null], ['acme/widgets'], [['acme/widgets']], [42]])('refuses a non-object: %j', (input) => {
    expect(githubSettingsSchema.safeParse(input).success).toBe(false);
  });
});

describe('githubSettingsSchema: repositories', () => {
  it.each([
    'acme/widgets',
    'a/b',
    'Acme/Widgets',
    'acme-corp/my.repo_name-2',
    'acme/.github',
    'acme/...',
    'acme/a.git.x',
    `${'a'.repeat(39)}/x`,
    `acme/${'r'.repeat(100)}`,
    '0/0',
  ])('accepts %s', (repository) => {
    expect(problems({ repositories: [repository] })).toEqual([]);
  });

  it.each([
    ['no slash', 'acme'],
    ['empty name', 'acme/'],
    ['empty owner', '/widgets'],
    ['three parts', 'acme/widgets/extra'],
    ['trailing slash', 'acme/widgets/'],
    ['.git suffix', 'acme/widgets.git'],
    ['.git alone', 'acme/.git'],
    ['dot', 'acme/.'],
    ['dot-dot', 'acme/..'],
    ['dot-dot owner', '../widgets'],
    ['leading hyphen owner', '-acme/widgets'],
    ['underscore in owner', 'ac_me/widgets'],
    ['dot in owner', 'ac.me/widgets'],
    ['owner too long', `${'a'.repeat(40)}/x`],
    ['name too long', `acme/${'r'.repeat(101)}`],
    ['space', 'acme/wid gets'],
    ['percent escape', 'acme/wid%67ets'],
    ['backslash', 'acme\\widgets'],
    ['URL', 'https://github.com/acme/widgets'],
    ['empty', ''],
    ['non-ASCII', 'acme/wïdgets'],
    ['NUL', 'acme/widgets\0'],
  ])('refuses %s (%j)', (_why, repository) => {
    expect(problems({ repositories: [repository] })).toEqual(['expected a repository as owner/name (e.g. acme/widgets), without .git']);
  });

  it('refuses an empty list, saying to omit it', () => {
    expect(problems({ repositories: [] })).toEqual(['expected at least one repository (omit "repositories" for all the installation can reach)']);
  });

  it('takes at most 500 repositories', () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `acme/r${i}`);
    expect(problems({ repositories: names(500) })).toEqual([]);
    expect(problems({ repositories: names(501) })).toHaveLength(1);
  });

  it('refuses repositories of more than one owner, naming them (an installation is one account)', () => {
    const r = githubSettingsSchema.safeParse({ repositories: ['acme/a', 'other/b', 'acme/c'] });
    expect(r.success).toBe(false);
    expect(r.error!.issues).toHaveLength(1);
    expect(r.error!.issues[0]!.path).toEqual(['repositories']);
    expect(r.error!.issues[0]!.message).toBe('expected repositories of one owner (a GitHub App installation is one account), got acme, other');
  });

  it('compares owners case-insensitively (GitHub does)', () => {
    expect(problems({ repositories: ['acme/a', 'ACME/b', 'Acme/c'] })).toEqual([]);
  });

  it('mintRepositories gives the names only, as written; undefined without repositories', () => {
    expect(mintRepositories(parsed({ repositories: ['Acme/Widgets', 'acme/gears'] }))).toEqual(['Widgets', 'gears']);
    expect(mintRepositories(parsed({}))).toBeUndefined();
  });
});

describe('githubSettingsSchema: permissions', () => {
  it('accepts GitHub permission names with read, write or admin', () => {
    expect(problems({ permissions: { contents: 'write', pull_requests: 'read', administration: 'admin', metadata: 'read' } })).toEqual([]);
    expect(problems({ permissions: {} })).toEqual([]);
  });

  it.each([[{ Contents: 'write' }], [{ 'pull-requests': 'write' }], [{ '': 'write' }], [{ [`${'a'.repeat(65)}`]: 'read' }]])('refuses a permission name that is not GitHub\'s: %j', (permissions) => {
    const r = githubSettingsSchema.safeParse({ permissions });
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0]!;
    expect(issue.path).toEqual(['permissions', Object.keys(permissions)[0]]);
    expect(issue.message).toBe('expected a GitHub permission name such as contents or pull_requests');
  });

  it.each([[{ contents: 'none' }], [{ contents: 'WRITE' }], [{ contents: true }], [{ contents: null }]])('refuses a level other than read, write or admin: %j', (permissions) => {
    expect(problems({ permissions })).toEqual(['expected read, write or admin']);
  });

  it('refuses a list instead of a mapping', () => {
    expect(problems({ permissions: ['contents'] })).toHaveLength(1);
  });
});

describe('githubSettingsSchema: pushBranches', () => {
  it.each(['tagbox/*', 'tagbox/{thread}', 'tagbox/{thread}/*', 'agent-*', 'a.b/c_d-e/*', '{thread}', '{thread}/*', 'x/{thread}-{thread}', 'feature', 'a*', 'a/*/b', 'T/*'])(
    'accepts %s',
    (pattern) => {
      expect(problems({ pushBranches: pattern })).toEqual([]);
    },
  );

  const ALONE = 'a pattern of "*" alone would allow pushing to every branch, main included; give a prefix such as tagbox/*';
  it.each(['*', '**', '***'])('refuses %s: it would allow every branch, main included', (pattern) => {
    expect(problems({ pushBranches: pattern })).toEqual([ALONE]);
  });

  const CHARS = 'expected a branch pattern of letters, digits, ".", "_", "-", "/", "*" and {thread} (e.g. tagbox/*)';
  it.each(['tagbox/{thread', 'tagbox/thread}', 'tagbox/{other}', 'tagbox/{{thread}}', 'tag box/*', 'tagbox/~x', 'tagbox/^x', 'tagbox/:x', 'tagbox/?', 'tagbox/[a]', 'tagbox\\x', 'tagbox/@{x}', 'tagbox/\n', 'tagbox/é', 'refs/heads/*x\0'])(
    'refuses characters git or the pattern cannot take: %j',
    (pattern) => {
      expect(problems({ pushBranches: pattern })).toEqual([CHARS]);
    },
  );

  const NAME = 'expected a valid branch name pattern (no leading "/" or ".", no "..", "//" or ".lock")';
  it.each(['/tagbox/*', 'tagbox/', 'tagbox//x', '.tagbox/*', 'tagbox/.x', 'tagbox/..', 'a..b', 'x.lock', 'x.lock/y', 'tagbox/*.lock', '{thread}.lock'])('refuses an invalid branch name: %s', (pattern) => {
    expect(problems({ pushBranches: pattern })).toEqual([NAME]);
  });

  it('refuses an empty pattern and one over 200 characters', () => {
    expect(problems({ pushBranches: '' })).toContain('expected a branch pattern such as tagbox/*');
    expect(problems({ pushBranches: `t/${'a'.repeat(198)}` })).toEqual([]);
    expect(problems({ pushBranches: `t/${'a'.repeat(199)}` })).toHaveLength(1);
  });

  it('an accepted pattern always has a literal character and only the allowed ones (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[a-z*/{}.\-_]{0,12}$/), fc.stringMatching(/^(\{thread\}|[*/a.])+$/)), (pattern) => {
        if (problems({ pushBranches: pattern }).length > 0) return;
        const bare = pattern.split('{thread}').join('x');
        expect(bare).toMatch(/^[A-Za-z0-9._/*-]+$/);
        expect(bare.replace(/\*/g, '')).not.toBe('');
        expect(bare).not.toMatch(/\.\.|\/\/|^\/|\/$|^\./);
      }),
    );
  });
});

describe('bundle files: a GitHub App connection', () => {
  it('may omit allowedWebsites and inject: both of GitHub\'s hosts, basic x-access-token, tagbox/*', () => {
    expect(GITHUB_GIT_HOST).toBe('github.com');
    expect(GITHUB_API_HOST).toBe('api.github.com');
    expect(GITHUB_GIT_USERNAME).toBe('x-access-token');
    expect(connectionOf('secret: gh-app\ngithub: {}')).toEqual({
      name: 'gh',
      secret: 'gh-app',
      allowedWebsites: [{ host: 'github.com' }, { host: 'api.github.com' }],
      inject: { basic: { username: 'x-access-token' } },
      github: { pushBranches: 'tagbox/*' },
    });
  });

  it('keeps the settings given', () => {
    const c = connectionOf('secret: gh-app\ngithub:\n  repositories: [acme/widgets]\n  permissions: {contents: write, pull_requests: write}\n  pushBranches: "tagbox/{thread}"');
    expect(c.github).toEqual({ repositories: ['acme/widgets'], permissions: { contents: 'write', pull_requests: 'write' }, pushBranches: 'tagbox/{thread}' });
    expect(c.allowedWebsites).toEqual([{ host: 'github.com' }, { host: 'api.github.com' }]);
  });

  it.each([
    ['[github.com]', [{ host: 'github.com' }]],
    ['[api.github.com]', [{ host: 'api.github.com' }]],
    ['[api.github.com, github.com]', [{ host: 'api.github.com' }, { host: 'github.com' }]],
    ['[GitHub.COM., API.GITHUB.COM]', [{ host: 'github.com' }, { host: 'api.github.com' }]],
    ['[{host: github.com, ports: [443]}]', [{ host: 'github.com', ports: [443] }]],
  ])('may list some of GitHub\'s hosts: %s', (websites, expected) => {
    expect(connectionOf(`secret: gh-app\ngithub: {}\nallowedWebsites: ${websites}`).allowedWebsites).toEqual(expected);
  });

  it.each(['example.com', '*.github.com', 'gist.github.com', 'uploads.github.com', 'github.com.evil.example', 'raw.githubusercontent.com', '140.82.112.3', 'ghe.acme.example'])(
    'refuses any other website: %s',
    (host) => {
      const message = errorOf(`secret: gh-app\ngithub: {}\nallowedWebsites: [github.com, "${host}"]`);
      expect(message).toBe(`bundles.yaml:7: ${WHERE}.allowedWebsites[1]: a GitHub App connection reaches github.com and api.github.com only (omit allowedWebsites for both)`);
    },
  );

  it('refuses an empty allowedWebsites list', () => {
    expect(errorOf('secret: gh-app\ngithub: {}\nallowedWebsites: []')).toMatch(/allowedWebsites: expected at least one host$/);
  });

  it('accepts inject only as basic x-access-token (what it would be anyway)', () => {
    expect(connectionOf('secret: gh-app\ngithub: {}\ninject: {basic: {username: x-access-token}}').inject).toEqual({ basic: { username: 'x-access-token' } });
  });

  it.each([
    ['a header', 'inject: {header: Authorization, value: "Bearer {{secret}}"}'],
    ['another basic user', 'inject: {basic: {username: git}}'],
    ['a case variant of the user', 'inject: {basic: {username: X-Access-Token}}'],
    ['a custom header', 'inject: {header: X-Token, value: "{{secret}}"}'],
  ])('refuses inject as %s', (_what, inject) => {
    expect(errorOf(`secret: gh-app\ngithub: {}\n${inject}`)).toBe(
      `bundles.yaml:7: ${WHERE}.inject: a GitHub App connection injects its token itself (basic x-access-token for git, a bearer for the API): omit inject`,
    );
  });

  it.each(['narrow: {readOnly: true}', 'narrow: {host: github.com}', 'narrow: {pathPrefix: /acme/}'])('refuses narrow (%s): repositories narrow it', (narrow) => {
    expect(errorOf(`secret: gh-app\ngithub: {}\n${narrow}`)).toBe(
      `bundles.yaml:7: ${WHERE}.narrow: a GitHub App connection is narrowed by github.repositories (and the token by github.permissions): omit narrow`,
    );
  });

  it('refuses plainHttp: true, accepts plainHttp: false', () => {
    expect(errorOf('secret: gh-app\ngithub: {}\nplainHttp: true')).toBe(`bundles.yaml:7: ${WHERE}.plainHttp: GitHub is reached over TLS only`);
    expect(connectionOf('secret: gh-app\ngithub: {}\nplainHttp: false').plainHttp).toBe(false);
  });

  it('reports every GitHub problem at once, each with its field', () => {
    const lines = errorOf('secret: gh-app\ngithub: {}\nallowedWebsites: [example.com]\ninject: {header: X, value: "{{secret}}"}\nnarrow: {readOnly: true}\nplainHttp: true').split('\n');
    expect(lines.map((l) => /connections\[0\]\.(\S+):/.exec(l)?.[1])).toEqual(['allowedWebsites[0]', 'inject', 'narrow', 'plainHttp']);
  });

  it.each([
    ['a bad repository', 'github: {repositories: [acme/widgets.git]}', `bundles.yaml:6: ${WHERE}.github.repositories[0]: expected a repository as owner/name (e.g. acme/widgets), without .git`],
    ['two owners', 'github: {repositories: [acme/a, other/b]}', `bundles.yaml:6: ${WHERE}.github.repositories: expected repositories of one owner (a GitHub App installation is one account), got acme, other`],
    ['a bad permission', 'github: {permissions: {contents: none}}', `bundles.yaml:6: ${WHERE}.github.permissions.contents: expected read, write or admin`],
    ['"*" alone', 'github: {pushBranches: "*"}', `bundles.yaml:6: ${WHERE}.github.pushBranches: a pattern of "*" alone would allow pushing to every branch, main included; give a prefix such as tagbox/*`],
    ['an unknown key', 'github: {repos: [acme/a]}', `bundles.yaml:6: ${WHERE}.github: unknown key "repos"`],
    ['null', 'github: null', `bundles.yaml:6: ${WHERE}.github: expected object, received null`],
  ])('names the github field at fault: %s', (_what, github, message) => {
    expect(errorOf(`secret: gh-app\n${github}`)).toBe(message);
  });

  it('names a bad permission name with what is expected (not "Invalid key in record")', () => {
    expect(errorOf('secret: gh-app\ngithub: {permissions: {Contents: write}}')).toBe(
      `bundles.yaml:6: ${WHERE}.github.permissions.Contents: expected a GitHub permission name such as contents or pull_requests`,
    );
  });

  it('still refuses a secret in the personal namespace', () => {
    expect(errorOf('secret: personal.abc.gh\ngithub: {}')).toMatch(/connections\[0\]\.secret: "personal\.abc\.gh" is in the personal\. namespace/);
  });

  it('round-trips through validateBundles (the store keeps the normalised form)', () => {
    const once = parseBundleFile(file('secret: gh-app\ngithub:\n  repositories: [acme/widgets]\n  pushBranches: "t/{thread}"'), 'bundles.yaml').bundles;
    expect(validateBundles(JSON.parse(JSON.stringify(once)), 'stored')).toEqual(once);
  });

  it('loadBundleFile reads the same from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-gh-settings-'));
    try {
      const path = join(dir, 'bundles.yaml');
      writeFileSync(path, file('secret: gh-app\ngithub: {repositories: [acme/widgets]}'));
      expect(loadBundleFile(path)).toEqual(parseBundleFile(file('secret: gh-app\ngithub: {repositories: [acme/widgets]}'), path));
      writeFileSync(path, file('secret: gh-app\ngithub: {pushBranches: "*"}'));
      expect(() => loadBundleFile(path)).toThrow(`${path}:6: ${WHERE}.github.pushBranches: a pattern of "*" alone`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is not a personal connector\'s (its schema has no github key)', () => {
    expect(() =>
      validatePersonalConnector({ name: 'gh', secret: 'personal.abc.gh', allowedWebsites: ['github.com'], inject: { basic: { username: 'x-access-token' } }, github: {} }, 'personal connector "gh"'),
    ).toThrow(/unknown key "github"/);
  });
});

describe('bundle files: a connection without github still needs its websites and injection', () => {
  it('names allowedWebsites when it is missing', () => {
    expect(errorOf('secret: tok\ninject: {header: Authorization, value: "Bearer {{secret}}"}')).toBe(`bundles.yaml:4: ${WHERE}.allowedWebsites: expected at least one host`);
  });

  it('names inject when it is missing', () => {
    expect(errorOf('secret: tok\nallowedWebsites: [x.example.com]')).toBe(`bundles.yaml:4: ${WHERE}.inject: expected {header, value} or {basic: {username}}`);
  });

  it('names both when both are missing, alongside other problems', () => {
    const lines = errorOf('secret: BAD').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/connections\[0\]\.secret: expected a secret name/);
    expect(lines[1]).toBe(`bundles.yaml:4: ${WHERE}.allowedWebsites: expected at least one host`);
    expect(lines[2]).toBe(`bundles.yaml:4: ${WHERE}.inject: expected {header, value} or {basic: {username}}`);
  });

  it('is unchanged otherwise: any website, any injection, no github key in the result', () => {
    const c = connectionOf('secret: tok\nallowedWebsites: [api.github.com]\ninject: {header: Authorization, value: "token {{secret}}"}\nnarrow: {readOnly: true}');
    expect(c).toEqual({ name: 'gh', secret: 'tok', allowedWebsites: [{ host: 'api.github.com' }], inject: { header: 'Authorization', value: 'token {{secret}}' }, narrow: { readOnly: true } });
    expect('github' in c).toBe(false);
  });
});
