import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apiRepositoryOf, gitRequestOf, githubOutside, pullRequestCreationOf, repositoryKey, type GithubRule } from '../../src/policy/github-paths.js';
import { normalisePath } from '../../src/policy/paths.js';

// Inputs are built as decide() builds them: the raw request-target through normalisePath.
const git = (method: string, raw: string) => gitRequestOf(method, normalisePath(raw));
const api = (raw: string) => apiRepositoryOf(normalisePath(raw));
const pull = (method: string, raw: string) => pullRequestCreationOf(method, normalisePath(raw));

describe('gitRequestOf: git smart HTTP on github.com', () => {
  it.each([
    ['GET', '/acme/widgets/info/refs', 'refs'],
    ['HEAD', '/acme/widgets/info/refs', 'refs'],
    ['GET', '/acme/widgets.git/info/refs', 'refs'],
    ['GET', '/acme/widgets/info/refs?service=git-upload-pack', 'refs'],
    ['GET', '/acme/widgets.git/info/refs?service=git-receive-pack', 'refs'],
    ['POST', '/acme/widgets/git-upload-pack', 'upload-pack'],
    ['POST', '/acme/widgets.git/git-upload-pack', 'upload-pack'],
    ['POST', '/acme/widgets/git-receive-pack', 'receive-pack'],
    ['POST', '/acme/widgets.git/git-receive-pack', 'receive-pack'],
    ['POST', '/acme/widgets/git-receive-pack#frag', 'receive-pack'],
  ])('%s %s is %s of acme/widgets', (method, path, service) => {
    expect(git(method, path)).toEqual({ owner: 'acme', repo: 'widgets', service });
  });

  it('keeps the case of owner and name as sent (keys compare case-insensitively)', () => {
    expect(git('POST', '/Acme/Widgets.git/git-receive-pack')).toEqual({ owner: 'Acme', repo: 'Widgets', service: 'receive-pack' });
    expect(repositoryKey({ owner: 'Acme', repo: 'Widgets' })).toBe('acme/widgets');
  });

  it.each([
    ['/acme/my.repo_x-1/info/refs', 'my.repo_x-1'],
    ['/acme/.github/info/refs', '.github'],
    ['/acme/.github.git/info/refs', '.github'],
    ['/acme/widgets.git.git/info/refs', 'widgets.git'],
    ['/acme/widgets.GIT/info/refs', 'widgets.GIT'],
    ['/acme/...git/info/refs', undefined],
    ['/acme/..git/info/refs', undefined],
    ['/acme/.git/info/refs', undefined],
  ])('the .git suffix is stripped once: %s -> %s', (path, repo) => {
    expect(git('GET', path)?.repo).toBe(repo);
  });

  it('resolves escapes and dot-segments as decide does: the repository is the one the path lands on', () => {
    expect(git('GET', '/acme/wid%67ets/info/refs')).toEqual({ owner: 'acme', repo: 'widgets', service: 'refs' });
    expect(git('GET', '/acme/widgets/./info/refs')).toEqual({ owner: 'acme', repo: 'widgets', service: 'refs' });
    expect(git('POST', '/acme/other/../widgets/git-receive-pack')).toEqual({ owner: 'acme', repo: 'widgets', service: 'receive-pack' });
    expect(git('POST', '/acme/widgets/../other/git-receive-pack')).toEqual({ owner: 'acme', repo: 'other', service: 'receive-pack' });
    expect(git('POST', '/evil/x/../../acme/widgets/git-receive-pack')).toEqual({ owner: 'acme', repo: 'widgets', service: 'receive-pack' });
    expect(git('POST', '/acme/widgets/%2e%2e/other/git-receive-pack')).toEqual({ owner: 'acme', repo: 'other', service: 'receive-pack' });
  });

  it.each([
    // dot-segments that leave too few segments
    ['POST', '/acme/../x/git-receive-pack'],
    ['POST', '/acme/widgets/../git-receive-pack'],
    ['POST', '/acme/%2e%2e/git-receive-pack'],
    ['GET', '/acme/%2e%2e/info/refs'],
    ['GET', '/acme/./info/refs'],
    ['POST', '/acme/widgets/git-receive-pack/..'],
    ['POST', '/acme/widgets/git-receive-pack/.'],
    // encoded or odd separators (unsafe: servers disagree)
    ['POST', '/acme/widgets%2Fgit-receive-pack'],
    ['POST', '/acme%2Fwidgets/git-receive-pack'],
    ['GET', '/acme/widgets/info%2Frefs'],
    ['GET', '/acme/widgets/info%2frefs'],
    ['POST', '/acme/widgets%5Cgit-receive-pack'],
    ['POST', '/acme\\widgets\\git-receive-pack'],
    ['POST', '/acme/widgets/..;/git-receive-pack'],
    ['POST', '/acme/widgets;x/git-receive-pack'],
    ['POST', '/acme/widgets/git-receive-pack%00'],
    ['POST', '/acme/widgets/git-receive-pack%2500'],
    ['POST', '/acme/wid gets/git-receive-pack'],
    ['POST', '/acme/wid%20gets/git-receive-pack'],
    ['POST', '/acme/wïdgets/git-receive-pack'],
    ['POST', '//acme/widgets/git-receive-pack'],
    ['POST', '/acme//widgets/git-receive-pack'],
    ['POST', '/acme/widgets//git-receive-pack'],
    ['POST', 'acme/widgets/git-receive-pack'],
    // trailing slash, extra or missing segments, case
    ['POST', '/acme/widgets/git-receive-pack/'],
    ['GET', '/acme/widgets/info/refs/'],
    ['POST', '/acme/widgets/extra/git-receive-pack'],
    ['POST', '/acme/git-receive-pack'],
    ['POST', '/git-receive-pack'],
    ['GET', '/acme/widgets/INFO/REFS'],
    ['POST', '/acme/widgets/Git-Receive-Pack'],
    ['POST', '/acme/widgets/git-receive-pack.git'],
    ['GET', '/acme/widgets/info/refs.git'],
    // other git-over-HTTP endpoints: dumb HTTP, LFS, web pages
    ['GET', '/acme/widgets/HEAD'],
    ['GET', '/acme/widgets/objects/info/packs'],
    ['GET', '/acme/widgets.git/info/lfs/objects/batch'],
    ['POST', '/acme/widgets.git/info/lfs/objects/batch'],
    ['GET', '/acme/widgets'],
    ['GET', '/acme/widgets/pull/1'],
    ['GET', '/'],
    ['GET', '/login/oauth/access_token'],
    // names GitHub would not have
    ['POST', `/${'a'.repeat(40)}/widgets/git-receive-pack`],
    ['POST', `/acme/${'r'.repeat(101)}/git-receive-pack`],
    ['POST', '/ac_me/widgets/git-receive-pack'],
    ['POST', '/ac.me/widgets/git-receive-pack'],
    ['POST', '/acme/wid~gets/git-receive-pack'],
    ['POST', '/acme/wid@gets/git-receive-pack'],
  ])('%s %s is not a git request', (method, path) => {
    expect(git(method, path)).toBeUndefined();
  });

  it.each([
    ['POST', '/acme/widgets/info/refs'],
    ['PUT', '/acme/widgets/info/refs'],
    ['OPTIONS', '/acme/widgets/info/refs'],
    ['get', '/acme/widgets/info/refs'],
    ['Get', '/acme/widgets/info/refs'],
    ['head', '/acme/widgets/info/refs'],
    ['GET', '/acme/widgets/git-receive-pack'],
    ['HEAD', '/acme/widgets/git-receive-pack'],
    ['PUT', '/acme/widgets/git-receive-pack'],
    ['post', '/acme/widgets/git-receive-pack'],
    ['DELETE', '/acme/widgets/git-receive-pack'],
    ['GET', '/acme/widgets/git-upload-pack'],
    ['PATCH', '/acme/widgets/git-upload-pack'],
    ['CONNECT', '/acme/widgets/git-upload-pack'],
  ])('the wrong method (%s %s) is not a git request', (method, path) => {
    expect(git(method, path)).toBeUndefined();
  });

  it('a query string cannot change the service or the repository', () => {
    expect(git('GET', '/acme/widgets/info/refs?service=git-receive-pack&x=/other/repo/git-receive-pack')).toEqual({ owner: 'acme', repo: 'widgets', service: 'refs' });
    expect(git('POST', '/acme/widgets/git-upload-pack?/acme/other/git-receive-pack')).toEqual({ owner: 'acme', repo: 'widgets', service: 'upload-pack' });
    expect(git('POST', '/acme/widgets?/git-receive-pack')).toBeUndefined();
  });

  const owner = fc.stringMatching(/^[A-Za-z0-9-]{1,39}$/);
  const name = fc.stringMatching(/^[A-Za-z0-9._-]{1,100}$/).filter((n) => n !== '.' && n !== '..' && !n.endsWith('.git'));
  const service = fc.constantFrom(['GET', 'info/refs', 'refs'] as const, ['POST', 'git-upload-pack', 'upload-pack'] as const, ['POST', 'git-receive-pack', 'receive-pack'] as const);

  it('reads any GitHub owner/name, with or without .git (property)', () => {
    fc.assert(
      fc.property(owner, name, service, fc.boolean(), (o, n, [method, tail, s], dotGit) => {
        // Names starting with "." make normalisePath take its slow path; the result is the same.
        expect(git(method, `/${o}/${n}${dotGit ? '.git' : ''}/${tail}`)).toEqual({ owner: o, repo: n, service: s });
      }),
    );
  });

  it('whatever the path, a recognised one is exactly /owner/name[.git]/service after normalisation (property)', () => {
    const piece = fc.constantFrom('acme', 'widgets', 'other', '.', '..', '', '%2e%2e', '%2E', '%2F', '%2f', '.git', 'widgets.git', 'info', 'refs', 'info/refs', 'git-receive-pack', 'git-upload-pack', ';', '?', '#', '%00', '\\', 'A', '-');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'get'), (pieces, method) => {
        const raw = `/${pieces.join('/')}`;
        const n = normalisePath(raw);
        const r = gitRequestOf(method, n);
        if (!r) return;
        expect(n.unsafe).toBeUndefined();
        const tail = { refs: 'info/refs', 'upload-pack': 'git-upload-pack', 'receive-pack': 'git-receive-pack' }[r.service];
        expect([`/${r.owner}/${r.repo}/${tail}`, `/${r.owner}/${r.repo}.git/${tail}`]).toContain(n.path);
        expect(r.repo).not.toMatch(/^\.{0,2}$/);
        expect(`${r.owner}${r.repo}`).not.toContain('/');
        expect(r.service === 'refs' ? ['GET', 'HEAD'] : ['POST']).toContain(method);
      }),
      { numRuns: 2000 },
    );
  });

  it('an unsafe path is never a git request (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const n = normalisePath(s);
        if (n.unsafe !== undefined) {
          for (const m of ['GET', 'HEAD', 'POST']) expect(gitRequestOf(m, n)).toBeUndefined();
          expect(apiRepositoryOf(n)).toBeUndefined();
        }
      }),
    );
  });
});

describe('apiRepositoryOf: /repos/{owner}/{repo}[/…] on api.github.com', () => {
  it.each([
    ['/repos/acme/widgets', 'acme', 'widgets', ''],
    ['/repos/acme/widgets/', 'acme', 'widgets', '/'],
    ['/repos/acme/widgets/pulls', 'acme', 'widgets', '/pulls'],
    ['/repos/acme/widgets/pulls/12/comments', 'acme', 'widgets', '/pulls/12/comments'],
    ['/repos/acme/widgets/contents/a%20b.txt', 'acme', 'widgets', '/contents/a%20b.txt'],
    ['/repos/acme/widgets/pulls?state=open', 'acme', 'widgets', '/pulls'],
    ['/repos/Acme/Widgets/issues', 'Acme', 'Widgets', '/issues'],
    ['/repos/acme/widgets.git', 'acme', 'widgets.git', ''],
    ['/repos/acme/.github/x', 'acme', '.github', '/x'],
    ['/repos/other/x/../../acme/widgets/pulls', 'acme', 'widgets', '/pulls'],
    ['/repos/acme/wid%67ets/pulls', 'acme', 'widgets', '/pulls'],
    ['/repos/acme/widgets/x/../pulls', 'acme', 'widgets', '/pulls'],
    // "." resolves away; what is left names the repository "pulls" (as GitHub would read it)
    ['/repos/acme/./pulls', 'acme', 'pulls', ''],
  ])('%s is about %s/%s (rest %j)', (path, owner, repo, rest) => {
    expect(api(path)).toEqual({ owner, repo, rest });
  });

  it.each([
    '/repos/acme',
    '/repos/acme/',
    '/repos/',
    '/repos',
    '/REPOS/acme/widgets',
    '/Repos/acme/widgets',
    '/repos/acme/..',
    '/repos/acme/../widgets',
    '/repos/acme/%2e%2e/widgets',
    '/repos/acme/.',
    '/repos/acme%2Fwidgets',
    '/repos/acme/widgets%2F..%2F..%2Fother%2Fx',
    '/repos/acme/widgets%2fpulls',
    '/repos/acme/widgets\\..\\x',
    '/repos/acme/widgets/..;/x',
    '/repos/acme//widgets',
    '//repos/acme/widgets',
    '/repositories/123/pulls',
    '/orgs/acme/repos',
    '/user/repos',
    '/graphql',
    '/app/installations/1/access_tokens',
    '/',
    `/repos/${'a'.repeat(40)}/widgets`,
    `/repos/acme/${'r'.repeat(101)}`,
    '/repos/ac_me/widgets',
  ])('%s is about no repository', (path) => {
    expect(api(path)).toBeUndefined();
  });
});

describe('pullRequestCreationOf: POST /repos/{owner}/{repo}/pulls', () => {
  it.each(['/repos/acme/widgets/pulls', '/repos/acme/widgets/pulls/', '/repos/acme/widgets/pulls?x=1', '/repos/acme/widgets/x/../pulls', '/repos/acme/widgets/./pulls'])('%s creates a pull request', (path) => {
    expect(pull('POST', path)).toEqual({ owner: 'acme', repo: 'widgets' });
  });

  it.each([
    ['GET', '/repos/acme/widgets/pulls'],
    ['PUT', '/repos/acme/widgets/pulls'],
    ['post', '/repos/acme/widgets/pulls'],
    ['Post', '/repos/acme/widgets/pulls'],
    ['POST', '/repos/acme/widgets/pulls/1'],
    ['POST', '/repos/acme/widgets/pulls/1/reviews'],
    ['POST', '/repos/acme/widgets/pulls/comments'],
    ['POST', '/repos/acme/widgets/Pulls'],
    ['POST', '/repos/acme/widgets/pulls//'],
    ['POST', '/repos/acme/widgets/pulls/..'],
    ['POST', '/repos/acme/widgets/pullsx'],
    ['POST', '/repos/acme/widgets/issues'],
    ['POST', '/repos/acme/widgets'],
    ['POST', '/repos/acme/pulls'],
    ['POST', '/repos/acme/widgets%2Fpulls'],
    ['POST', '/repos/acme/widgets/pulls%2F'],
    ['POST', '/repositories/1/pulls'],
  ])('%s %s does not', (method, path) => {
    expect(pull(method, path)).toBeUndefined();
  });
});

describe('githubOutside: why a request gets no credential', () => {
  const rule = (service: 'git' | 'api', repositories?: string[]): GithubRule => ({
    service,
    ...(repositories ? { repositories: new Set(repositories.map((r) => r.toLowerCase())) } : {}),
    pushBranches: 'tagbox/*',
  });
  const outside = (r: GithubRule, method: string, raw: string) => githubOutside(r, method, normalisePath(raw));

  it('git, every repository: any git request is inside, anything else is not git', () => {
    const r = rule('git');
    expect(outside(r, 'GET', '/acme/widgets/info/refs')).toBeUndefined();
    expect(outside(r, 'POST', '/anyone/anything.git/git-receive-pack')).toBeUndefined();
    expect(outside(r, 'GET', '/acme/widgets')).toBe('GET /acme/widgets is not a git smart-HTTP request (the token goes to github.com for git only)');
    expect(outside(r, 'GET', '/acme/widgets/git-receive-pack')).toBe('GET /acme/widgets/git-receive-pack is not a git smart-HTTP request (the token goes to github.com for git only)');
    expect(outside(r, 'POST', '/acme/widgets%2Fgit-receive-pack')).toMatch(/is not a git smart-HTTP request/);
  });

  it('git, some repositories: only theirs, case-insensitively, .git or not', () => {
    const r = rule('git', ['Acme/Widgets', 'acme/gears']);
    for (const path of ['/acme/widgets/info/refs', '/ACME/WIDGETS.git/info/refs', '/acme/Gears/info/refs', '/acme/other/../widgets/info/refs']) expect(outside(r, 'GET', path)).toBeUndefined();
    expect(outside(r, 'POST', '/acme/other/git-receive-pack')).toBe('repository acme/other is not one of acme/widgets, acme/gears');
    expect(outside(r, 'POST', '/acme/widgets/../other/git-receive-pack')).toBe('repository acme/other is not one of acme/widgets, acme/gears');
    expect(outside(r, 'POST', '/evil/widgets/git-receive-pack')).toBe('repository evil/widgets is not one of acme/widgets, acme/gears');
    expect(outside(r, 'POST', '/acme/widgets-evil/git-receive-pack')).toMatch(/is not one of/);
    expect(outside(r, 'POST', '/acme/widgets.GIT/git-receive-pack')).toMatch(/repository acme\/widgets\.GIT is not one of/);
    expect(outside(r, 'GET', '/acme/widgets/pulls')).toMatch(/is not a git smart-HTTP request/);
  });

  it('api, every repository: any path, even one about no repository', () => {
    const r = rule('api');
    for (const path of ['/user', '/graphql', '/repos/anyone/anything/pulls', '/', '/repos/acme%2Fx']) expect(outside(r, 'POST', path)).toBeUndefined();
  });

  it('api, some repositories: /repos/{theirs}/… only', () => {
    const r = rule('api', ['acme/widgets']);
    for (const path of ['/repos/acme/widgets', '/repos/acme/widgets/pulls', '/repos/ACME/Widgets/issues/1', '/repos/other/x/../../acme/widgets/pulls']) expect(outside(r, 'POST', path)).toBeUndefined();
    expect(outside(r, 'GET', '/user')).toBe('path /user is not about one of the repositories acme/widgets');
    expect(outside(r, 'POST', '/graphql')).toBe('path /graphql is not about one of the repositories acme/widgets');
    expect(outside(r, 'GET', '/repos/acme/other/pulls')).toBe('repository acme/other is not one of acme/widgets');
    expect(outside(r, 'GET', '/repos/acme/widgets/../other')).toBe('repository acme/other is not one of acme/widgets');
    expect(outside(r, 'GET', '/repos/acme/widgets%2F..%2Fother')).toMatch(/is not about one of the repositories/);
    expect(outside(r, 'GET', '/repositories/42')).toMatch(/is not about one of the repositories/);
    expect(outside(r, 'GET', '/repos/acme/widgets.git')).toBe('repository acme/widgets.git is not one of acme/widgets');
  });

  it('a git rule and an api rule agree on which repository a request is about (property)', () => {
    const repo = fc.constantFrom('acme/widgets', 'acme/Widgets', 'ACME/widgets', 'acme/widgets-x', 'acme/other', 'evil/widgets');
    fc.assert(
      fc.property(repo, (r) => {
        const inside = r.toLowerCase() === 'acme/widgets';
        expect(outside(rule('git', ['acme/widgets']), 'POST', `/${r}.git/git-receive-pack`) === undefined).toBe(inside);
        expect(outside(rule('api', ['acme/widgets']), 'POST', `/repos/${r}/pulls`) === undefined).toBe(inside);
      }),
    );
  });
});
