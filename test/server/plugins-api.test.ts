import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePlugin } from '../../src/plugins/plugin-blob.js';
import { BACKENDS } from '../helpers/backends.js';
import { filesOf, minimal, SAMPLE } from '../plugins/fixtures.js';
import { startApi, type ApiHarness } from './harness.js';

const upload = (name: string, tree: Record<string, string | Buffer>, executable = ['scripts/fmt.sh']) => ({
  name,
  files: Object.entries(tree).map(([path, data]) => ({ path, ...(executable.includes(path) ? { mode: '0755' } : {}), data: Buffer.from(data).toString('base64') })),
});

describe.each(BACKENDS)('plugins API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  let channelId: string;
  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'alice');
    member = await h.tokenFor('member', 'bob');
    const ch = await h.api(admin.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'C1', name: 'eng' });
    channelId = ch.body.id;
  });
  afterAll(async () => h?.close());

  it('is for admins', async () => {
    expect((await h.api(undefined, 'GET', '/api/v1/plugins')).status).toBe(401);
    expect((await h.api(member.token, 'GET', '/api/v1/plugins')).status).toBe(403);
    expect((await h.api(member.token, 'POST', '/api/v1/plugins', upload('kit', SAMPLE))).status).toBe(403);
    expect((await h.api(member.token, 'DELETE', '/api/v1/plugins/kit')).status).toBe(403);
  });

  it('adds a plugin from its files (201), leaves the same tree alone (200) and replaces a changed one (200)', async () => {
    const added = await h.api(admin.token, 'POST', '/api/v1/plugins', upload('kit', SAMPLE));
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({
      name: 'kit',
      digest: encodePlugin(filesOf(SAMPLE)).digest,
      change: 'add',
      plugin: { name: 'review-kit', version: '1.2.0' },
      counts: { skills: 2, commands: 1, agents: 1, hooks: 1, mcpServers: 1 },
      fileCount: Object.keys(SAMPLE).length,
      attachments: [],
      createdBy: admin.memberId,
    });
    const same = await h.api(admin.token, 'POST', '/api/v1/plugins', upload('kit', SAMPLE));
    expect([same.status, same.body.change]).toEqual([200, 'unchanged']);
    const replaced = await h.api(admin.token, 'POST', '/api/v1/plugins', upload('kit', { ...SAMPLE, 'commands/more.md': 'more' }));
    expect([replaced.status, replaced.body.change, replaced.body.counts.commands]).toEqual([200, 'replace', 2]);

    const events = await h.api(admin.token, 'GET', '/api/v1/audit?type=admin-change&limit=500');
    const mine = events.body.events.filter((e: { target: string }) => e.target === 'plugin:kit');
    expect(mine.map((e: { action: string }) => e.action)).toEqual(['add', 'replace']);
    expect(mine[0]).toMatchObject({ actor: admin.memberId, credential: expect.stringMatching(/^token:/) });
  });

  it('shows one plugin with its files, modes and sizes; 404 for another', async () => {
    const got = await h.api(admin.token, 'GET', '/api/v1/plugins/kit');
    expect(got.status).toBe(200);
    expect(got.body.files).toContainEqual({ path: 'scripts/fmt.sh', mode: '0755', size: Buffer.byteLength(SAMPLE['scripts/fmt.sh']!) });
    expect(got.body.files).toContainEqual({ path: 'commands/more.md', mode: '0644', size: 4 });
    expect((await h.api(admin.token, 'GET', '/api/v1/plugins')).body.map((p: { name: string }) => p.name)).toEqual(['kit']);
    expect((await h.api(admin.token, 'GET', '/api/v1/plugins/ghost')).status).toBe(404);
    expect((await h.api(admin.token, 'GET', '/api/v1/plugins/Bad..Name')).status).toBe(400);
  });

  it.each<[string, unknown, string]>([
    ['a bad name', upload('Bad_Name', minimal()), 'body.name: expected ^[a-z0-9][a-z0-9-]{0,62}$'],
    ['a path with ..', { name: 'p', files: [...upload('p', minimal()).files, { path: '../../x', data: 'eA==' }] }, 'body.files "../../x": the path has a ".." segment'],
    ['an absolute path', { name: 'p', files: [...upload('p', minimal()).files, { path: '/etc/x', data: 'eA==' }] }, 'body.files "/etc/x": an absolute path'],
    ['a path given twice', { name: 'p', files: [...upload('p', minimal()).files, ...upload('p', minimal()).files] }, 'body.files ".claude-plugin/plugin.json": given twice'],
    ['a mode that is not 0644 or 0755', { name: 'p', files: [{ path: 'a', mode: '4755', data: '' }] }, 'body.files[0].mode'],
    ['data that is not base64', { name: 'p', files: [{ path: 'a', data: 'not base64!' }] }, 'body.files[0].data: expected base64'],
    ['no manifest', upload('p', { 'skills/a/SKILL.md': '---\nname: a\ndescription: d\n---\n' }), 'body.files ".claude-plugin/plugin.json": missing'],
    ['bad frontmatter', upload('p', { ...minimal(), 'agents/x.md': '---\nname: x\n---\n' }), 'body.files "agents/x.md": frontmatter: description: expected non-empty text'],
    ['no components', upload('p', { '.claude-plugin/plugin.json': '{"name":"p"}' }), 'body.files: the plugin has no components'],
    ['too many files', { name: 'p', files: Array.from({ length: 2001 }, (_, i) => ({ path: `f${i}`, data: '' })) }, 'body.files: a plugin has at most 2000 files'],
    ['an unknown field', { ...upload('p', minimal()), symlinks: [] }, 'body'],
  ])('refuses %s with 400 naming it', async (_what, body, message) => {
    const res = await h.api(admin.token, 'POST', '/api/v1/plugins', body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
    expect((await h.api(admin.token, 'GET', '/api/v1/plugins/p')).status).toBe(404);
  });

  it('takes an upload larger than the server-wide body cap, but not one larger than any plugin could be; other routes keep their cap', async () => {
    const big = await h.api(admin.token, 'POST', '/api/v1/plugins', upload('big', { ...minimal(), 'data.bin': Buffer.alloc(2 * 1024 * 1024, 7) }));
    expect([big.status, big.body.bytes]).toEqual([201, expect.any(Number)]);
    expect(big.body.bytes).toBeGreaterThan(2 * 1024 * 1024);
    const huge = JSON.stringify({ name: 'huge', files: [{ path: 'a', data: 'A'.repeat(36 * 1024 * 1024) }] });
    expect((await h.api(admin.token, 'POST', '/api/v1/plugins', huge)).status).toBe(413);
    const bundle = await h.api(admin.token, 'PUT', '/api/v1/bundles/b', { description: 'x', domains: Array.from({ length: 20000 }, (_, i) => `h${i}.example.com`) });
    expect(bundle.status).toBe(413);
    expect((await h.api(admin.token, 'DELETE', '/api/v1/plugins/big')).status).toBe(204);
  });

  it('attaches and detaches with {scope: {kind, id?}}, idempotently; refuses scopes it cannot find', async () => {
    const attach = (scope: unknown) => h.api(admin.token, 'POST', '/api/v1/plugins/kit/attachments', { scope });
    expect((await attach({ kind: 'org' })).body.attachments).toEqual([{ kind: 'org' }]);
    expect((await attach({ kind: 'org' })).body.attachments).toEqual([{ kind: 'org' }]);
    expect((await attach({ kind: 'workspace', id: h.webWorkspaceId })).status).toBe(200);
    const both = await attach({ kind: 'channel', id: channelId });
    expect(both.body.attachments).toEqual([{ kind: 'org' }, { kind: 'workspace', id: h.webWorkspaceId }, { kind: 'channel', id: channelId }]);

    expect((await attach({ kind: 'channel', id: 'nope' })).status).toBe(404);
    expect((await attach({ kind: 'workspace' })).status).toBe(400);
    expect((await attach({ kind: 'org', id: 'x' })).status).toBe(400);
    expect((await attach('org')).status).toBe(400);
    expect((await h.api(admin.token, 'POST', '/api/v1/plugins/ghost/attachments', { scope: { kind: 'org' } })).status).toBe(404);

    const detached = await h.api(admin.token, 'DELETE', '/api/v1/plugins/kit/attachments', { scope: { kind: 'workspace', id: h.webWorkspaceId } });
    expect(detached.body.attachments).toEqual([{ kind: 'org' }, { kind: 'channel', id: channelId }]);
    expect((await h.api(member.token, 'POST', '/api/v1/plugins/kit/attachments', { scope: { kind: 'org' } })).status).toBe(403);
  });

  it('removes a plugin (204), then 404', async () => {
    expect((await h.api(admin.token, 'DELETE', '/api/v1/plugins/kit')).status).toBe(204);
    expect((await h.api(admin.token, 'DELETE', '/api/v1/plugins/kit')).status).toBe(404);
    expect((await h.api(admin.token, 'GET', '/api/v1/plugins')).body).toEqual([]);
  });
});
