import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore } from '../../src/store/database.js';
import { encodePlugin } from '../../src/plugins/plugin-blob.js';
import { PluginAdmin } from '../../src/plugins/plugin-admin.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from '../access/fixtures.js';
import { filesOf, minimal, SAMPLE } from './fixtures.js';
import { orgs } from './org-fixture.js';

describe.each(BACKENDS)('PluginAdmin on %s', (backendName) => {
  let w: World;
  let plugins: PluginAdmin;
  beforeEach(async () => {
    w = await createWorld(backendName);
    plugins = new PluginAdmin(w.store, w.audit);
  });
  afterEach(async () => w.close());

  async function pluginEvents() {
    const out = [];
    for await (const e of w.audit.query({ type: 'admin-change' })) if (String(e.target).startsWith('plugin:')) out.push(e);
    return out;
  }
  const blobCount = async () => (await w.store.db.selectFrom('plugin_blobs').select('digest').execute()).length;

  it('adds, leaves an identical tree alone, and replaces with a new digest; one audited event per change', async () => {
    const first = await plugins.add('alice', w.org.id, 'kit', filesOf(SAMPLE));
    expect(first.outcome).toBe('add');
    expect(first.plugin).toMatchObject({ name: 'kit', digest: encodePlugin(filesOf(SAMPLE)).digest, createdBy: 'alice', attachments: [] });
    expect(first.plugin.manifest.counts).toEqual({ skills: 2, commands: 1, agents: 1, hooks: 1, mcpServers: 1 });

    const again = await plugins.add('bob', w.org.id, 'kit', [...filesOf(SAMPLE)].reverse());
    expect(again.outcome).toBe('unchanged');

    const next = await plugins.add('bob', w.org.id, 'kit', filesOf({ ...SAMPLE, 'commands/more.md': 'more' }));
    expect(next.outcome).toBe('replace');
    expect(next.plugin.digest).not.toBe(first.plugin.digest);
    expect(next.plugin.manifest.counts.commands).toBe(2);
    expect(next.plugin.createdBy).toBe('alice');
    // The replaced blob is gone: nothing names it.
    expect(await blobCount()).toBe(1);

    const events = await pluginEvents();
    expect(events.map((e) => [e.actor, e.target, e.action, e.digest, e.previous])).toEqual([
      ['alice', 'plugin:kit', 'add', `sha256:${first.plugin.digest}`, undefined],
      ['bob', 'plugin:kit', 'replace', `sha256:${next.plugin.digest}`, `sha256:${first.plugin.digest}`],
    ]);
    expect(events[0]!.org).toBe(w.org.id);
    expect((await w.audit.verify()).ok).toBe(true);
  });

  it('stores one blob for two plugins with the same content, and drops it with the last of them', async () => {
    await plugins.add('alice', w.org.id, 'one', filesOf(minimal()));
    await plugins.add('alice', w.org.id, 'two', filesOf(minimal()));
    expect(await blobCount()).toBe(1);
    expect(await plugins.remove('alice', w.org.id, 'one')).toBe(true);
    expect(await blobCount()).toBe(1);
    expect(await plugins.remove('alice', w.org.id, 'two')).toBe(true);
    expect(await blobCount()).toBe(0);
    expect(await plugins.remove('alice', w.org.id, 'two')).toBe(false);
    expect((await pluginEvents()).map((e) => e.action)).toEqual(['add', 'add', 'remove', 'remove']);
  });

  it('attaches and detaches like bundles: idempotent, to scopes of its own org only, removed with the plugin', async () => {
    await plugins.add('alice', w.org.id, 'kit', filesOf(SAMPLE));
    expect(await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' })).toBe(true);
    expect(await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' })).toBe(false);
    expect(await plugins.attach('alice', w.org.id, 'kit', { kind: 'workspace', id: w.ws1.id })).toBe(true);
    expect(await plugins.attach('alice', w.org.id, 'kit', { kind: 'channel', id: w.eng.id })).toBe(true);
    expect((await plugins.get(w.org.id, 'kit'))!.attachments).toEqual(
      expect.arrayContaining([{ kind: 'org' }, { kind: 'workspace', id: w.ws1.id }, { kind: 'channel', id: w.eng.id }]),
    );
    expect(await plugins.detach('alice', w.org.id, 'kit', { kind: 'workspace', id: w.ws1.id })).toBe(true);
    expect(await plugins.detach('alice', w.org.id, 'kit', { kind: 'workspace', id: w.ws1.id })).toBe(false);
    expect((await plugins.list(w.org.id))[0]!.attachments).toHaveLength(2);

    await expect(plugins.attach('alice', w.org.id, 'kit', { kind: 'channel', id: 'nope' })).rejects.toThrow('channel nope not found');
    await expect(plugins.attach('alice', w.org.id, 'nope', { kind: 'org' })).rejects.toThrow('plugin "nope" not found');

    const events = (await pluginEvents()).filter((e) => e.action === 'attach' || e.action === 'detach');
    expect(events.map((e) => [e.action, e.scope])).toEqual([
      ['attach', 'org'],
      ['attach', `workspace:${w.ws1.id}`],
      ['attach', `channel:${w.eng.id}`],
      ['detach', `workspace:${w.ws1.id}`],
    ]);

    await plugins.remove('alice', w.org.id, 'kit');
    expect(await w.store.db.selectFrom('plugin_attachments').selectAll().execute()).toEqual([]);
  });

  it("refuses a workspace or channel of another org as if it did not exist", async () => {
    const stranger = await orgs(w, 'stranger');
    await plugins.add('alice', w.org.id, 'kit', filesOf(SAMPLE));
    await expect(plugins.attach('alice', w.org.id, 'kit', { kind: 'workspace', id: stranger.workspaceId })).rejects.toThrow(`workspace ${stranger.workspaceId} not found`);
    await expect(plugins.attach('alice', w.org.id, 'kit', { kind: 'channel', id: stranger.channelId })).rejects.toThrow(`channel ${stranger.channelId} not found`);
    // Its plugins are its own: the same name in two orgs are two plugins.
    await plugins.add('eve', stranger.orgId, 'kit', filesOf(minimal()));
    expect((await plugins.get(w.org.id, 'kit'))!.manifest.counts.skills).toBe(2);
    expect((await plugins.get(stranger.orgId, 'kit'))!.manifest.counts.skills).toBe(1);
  });

  it('refuses a bad name or an invalid plugin and stores nothing', async () => {
    await expect(plugins.add('alice', w.org.id, 'Bad_Name', filesOf(SAMPLE))).rejects.toThrow('plugin name "Bad_Name": expected ^[a-z0-9][a-z0-9-]{0,62}$');
    await expect(plugins.add('alice', w.org.id, 'kit', filesOf({ 'README.md': 'x' }))).rejects.toThrow('.claude-plugin/plugin.json: missing');
    await expect(plugins.add('alice', w.org.id, 'kit', [{ path: '../x', mode: 0o644, data: Buffer.from('x') }])).rejects.toThrow('../x: the path has a ".." segment');
    expect(await plugins.list(w.org.id)).toEqual([]);
    expect(await blobCount()).toBe(0);
    expect(await pluginEvents()).toEqual([]);
  });

  it('lists the files of a stored plugin with their modes and sizes', async () => {
    await plugins.add('alice', w.org.id, 'kit', filesOf(SAMPLE));
    const files = await plugins.files(w.org.id, 'kit');
    expect(files).toContainEqual({ path: 'scripts/fmt.sh', mode: '0755', size: Buffer.byteLength(SAMPLE['scripts/fmt.sh']!) });
    expect(files.map((f) => f.path)).toEqual(Object.keys(SAMPLE).sort());
  });

  it('serialises concurrent adds of one name: one add, then replaces or nothing', async () => {
    if (backendName === 'sqlite') return; // one connection: SQLite serialises in process anyway
    const stores = await Promise.all([1, 2, 3, 4].map(() => openControlStore(w.backend.location)));
    try {
      const outcomes = await Promise.all(
        stores.map((s, i) => new PluginAdmin(s, new AuditLog(s)).add(`a${i}`, w.org.id, 'race', filesOf(minimal('mini', { [`commands/c${i % 2}.md`]: 'x' })))),
      );
      expect(outcomes.filter((o) => o.outcome === 'add')).toHaveLength(1);
      expect(await blobCount()).toBe(1);
      expect((await w.audit.verify()).ok).toBe(true);
    } finally {
      for (const s of stores) await s.close();
    }
  });
});
