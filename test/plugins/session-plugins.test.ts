import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/plugins/plugin-blob.js';
import { PluginAdmin } from '../../src/plugins/plugin-admin.js';
import { pluginsForPlace } from '../../src/plugins/session-plugins.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from '../access/fixtures.js';
import { filesOf, minimal, SAMPLE } from './fixtures.js';

/** Everything under a directory, as relative paths (what a test compares before and after). */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const child = rel ? `${rel}/${name}` : name;
      out.push(child);
      if (lstatSync(join(dir, child)).isDirectory()) walk(child);
    }
  };
  walk('');
  return out.sort();
}

describe.each(BACKENDS)('pluginsForPlace on %s', (backendName) => {
  let w: World;
  let plugins: PluginAdmin;
  let root: string;
  let cacheDir: string;
  beforeEach(async () => {
    w = await createWorld(backendName);
    plugins = new PluginAdmin(w.store, w.audit);
    // root/outside is a neighbour of the cache: nothing may ever appear there.
    root = mkdtempSync(join(tmpdir(), 'tagbox-plugin-cache-'));
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'outside'));
    cacheDir = join(root, 'cache');
  });
  afterEach(async () => {
    rmSync(root, { recursive: true, force: true });
    await w.close();
  });

  const add = async (name: string, tree = minimal(name)) => (await plugins.add('alice', w.org.id, name, filesOf(tree))).plugin;
  const names = async (place: Parameters<typeof pluginsForPlace>[1]) => (await pluginsForPlace(w.store, place, cacheDir)).map((p) => p.name);

  it('gives a channel the plugins of the org, its workspace and itself; a DM those of the org and the member\'s workspace', async () => {
    for (const name of ['everywhere', 'eng-ws', 'eng-only', 'random-only', 'sales-ws']) await add(name);
    await plugins.attach('alice', w.org.id, 'everywhere', { kind: 'org' });
    await plugins.attach('alice', w.org.id, 'eng-ws', { kind: 'workspace', id: w.ws1.id });
    await plugins.attach('alice', w.org.id, 'eng-only', { kind: 'channel', id: w.eng.id });
    await plugins.attach('alice', w.org.id, 'random-only', { kind: 'channel', id: w.random.id });
    await plugins.attach('alice', w.org.id, 'sales-ws', { kind: 'workspace', id: w.ws2.id });
    // Attached twice (org and channel): still once.
    await plugins.attach('alice', w.org.id, 'everywhere', { kind: 'channel', id: w.eng.id });

    expect(await names({ kind: 'channel', channelId: w.eng.id })).toEqual(['eng-only', 'eng-ws', 'everywhere']);
    expect(await names({ kind: 'channel', channelId: w.random.id })).toEqual(['eng-ws', 'everywhere', 'random-only']);
    expect(await names({ kind: 'channel', channelId: w.sales.id })).toEqual(['everywhere', 'sales-ws']);
    expect(await names({ kind: 'dm', memberId: w.ada.id })).toEqual(['eng-ws', 'everywhere']);

    await plugins.detach('alice', w.org.id, 'everywhere', { kind: 'org' });
    expect(await names({ kind: 'channel', channelId: w.sales.id })).toEqual(['sales-ws']);
    await expect(pluginsForPlace(w.store, { kind: 'channel', channelId: 'nope' }, cacheDir)).rejects.toThrow('channel nope not found');
    await expect(pluginsForPlace(w.store, { kind: 'dm', memberId: 'nope' }, cacheDir)).rejects.toThrow('member nope not found');
  });

  it('extracts each plugin once under cacheDir/<digest>, 0755 directories and 0644/0755 files whatever the umask', async () => {
    const kit = await add('kit', SAMPLE);
    await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' });
    const old = process.umask(0o077);
    let got;
    try {
      got = await pluginsForPlace(w.store, { kind: 'channel', channelId: w.eng.id }, cacheDir);
    } finally {
      process.umask(old);
    }
    expect(got).toEqual([{ name: 'kit', digest: kit.digest, hostDir: join(cacheDir, kit.digest, 'plugin') }]);
    const hostDir = got[0]!.hostDir;
    for (const [path, text] of Object.entries(SAMPLE)) expect(readFileSync(join(hostDir, path), 'utf8')).toBe(text);
    expect(lstatSync(join(hostDir, 'scripts/fmt.sh')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(hostDir, 'commands/ship.md')).mode & 0o7777).toBe(0o644);
    for (const dir of [cacheDir, join(cacheDir, kit.digest), hostDir, join(hostDir, 'skills'), join(hostDir, 'skills/review')]) {
      expect(lstatSync(dir).mode & 0o7777).toBe(0o755);
    }
    // The marker sits beside the plugin, not in it: the sandbox never sees it.
    expect(readFileSync(join(cacheDir, kit.digest, 'complete'), 'utf8')).toBe(`${kit.digest}\n`);
    expect(listing(hostDir)).not.toContain('complete');
    expect(readdirSync(cacheDir)).toEqual([kit.digest]);

    if (process.getuid?.() === 0) {
      // Another uid (as the sandbox runs) reads it all and writes nothing.
      expect(execFileSync('runuser', ['-u', 'nobody', '--', 'cat', join(hostDir, 'skills/review/SKILL.md')], { encoding: 'utf8' })).toBe(SAMPLE['skills/review/SKILL.md']);
      expect(() => execFileSync('runuser', ['-u', 'nobody', '--', 'touch', join(hostDir, 'new')], { stdio: 'pipe' })).toThrow();
    }

    // Cached: a second call reads no blob (it would fail: the blob is gone from the store).
    await w.store.db.updateTable('plugin_blobs').set({ data: 'AAAA' }).execute();
    expect((await pluginsForPlace(w.store, { kind: 'channel', channelId: w.eng.id }, cacheDir))[0]!.hostDir).toBe(hostDir);
  });

  it('shares one extraction between concurrent callers and between plugins of the same content', async () => {
    await add('one');
    await add('two', minimal('one'));
    await plugins.attach('alice', w.org.id, 'one', { kind: 'org' });
    await plugins.attach('alice', w.org.id, 'two', { kind: 'org' });
    const results = await Promise.all([1, 2, 3].map(() => pluginsForPlace(w.store, { kind: 'channel', channelId: w.eng.id }, cacheDir)));
    const dirs = new Set(results.flat().map((p) => p.hostDir));
    expect(dirs.size).toBe(1);
    expect(readdirSync(cacheDir)).toHaveLength(1);
  });

  it('redoes a half-extracted cache directory (no marker, a wrong marker, a symlink in its place)', async () => {
    const kit = await add('kit', SAMPLE);
    await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' });
    const final = join(cacheDir, kit.digest);
    const place = { kind: 'channel' as const, channelId: w.eng.id };

    mkdirSync(join(final, 'plugin/skills'), { recursive: true });
    writeFileSync(join(final, 'plugin/skills/planted.md'), 'from a crash, or a meddler');
    let [got] = await pluginsForPlace(w.store, place, cacheDir);
    expect(existsSync(join(got!.hostDir, 'skills/planted.md'))).toBe(false);
    expect(readFileSync(join(got!.hostDir, 'commands/ship.md'), 'utf8')).toBe(SAMPLE['commands/ship.md']);

    writeFileSync(join(final, 'complete'), 'f'.repeat(64) + '\n');
    writeFileSync(join(final, 'plugin/planted'), 'x');
    [got] = await pluginsForPlace(w.store, place, cacheDir);
    expect(existsSync(join(got!.hostDir, 'planted'))).toBe(false);

    // A symlink at the final name is moved aside, never followed: its target is untouched.
    rmSync(final, { recursive: true });
    const elsewhere = join(root, 'outside');
    writeFileSync(join(elsewhere, 'keep'), 'mine');
    symlinkSync(elsewhere, final);
    [got] = await pluginsForPlace(w.store, place, cacheDir);
    expect(lstatSync(final).isDirectory()).toBe(true);
    expect(listing(elsewhere)).toEqual(['keep']);
    expect(readdirSync(cacheDir)).toEqual([kit.digest]);
  });

  describe('a hostile database', () => {
    const place = () => ({ kind: 'channel' as const, channelId: w.eng.id });
    /** Points plugin `name` at a blob row the attacker wrote: any bytes, any digest. */
    async function plant(name: string, blob: { digest: string; data: string }) {
      await w.store.db.insertInto('plugin_blobs').values({ digest: blob.digest, data: blob.data, size: 1, created_at: new Date().toISOString() }).onConflict((oc) => oc.column('digest').doNothing()).execute();
      await w.store.db.updateTable('plugins').set({ digest: blob.digest }).where('name', '=', name).execute();
    }
    const forged = (body: unknown) => {
      const canonical = Buffer.from(JSON.stringify(body));
      return { digest: sha256Hex(canonical), data: gzipSync(canonical).toString('base64') };
    };
    let etcProbe: string;
    beforeEach(async () => {
      await add('kit', SAMPLE);
      await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' });
      etcProbe = `/etc/tagbox-plugin-test-${randomBytes(6).toString('hex')}`;
    });
    afterEach(() => rmSync(etcProbe, { force: true }));

    async function refusedWritingNothing(message: string) {
      const before = listing(root);
      await expect(pluginsForPlace(w.store, place(), cacheDir)).rejects.toThrow(message);
      // Nothing new anywhere: not in the cache (no digest dir, no temp dir left), not beside it, not in /etc.
      expect(listing(root).filter((p) => !before.includes(p) && p !== 'cache')).toEqual([]);
      expect(existsSync(join(root, 'x'))).toBe(false);
      expect(existsSync(join(tmpdir(), 'x'))).toBe(false);
      expect(existsSync(etcProbe)).toBe(false);
    }

    it('refuses a blob whose bytes were changed', async () => {
      const row = await w.store.db.selectFrom('plugin_blobs').selectAll().executeTakeFirstOrThrow();
      const raw = Buffer.from(row.data, 'base64');
      raw.writeUInt8(raw.readUInt8(20) ^ 0x01, 20);
      await w.store.db.updateTable('plugin_blobs').set({ data: raw.toString('base64') }).execute();
      await refusedWritingNothing('plugin "kit": stored blob refused');
    });

    it('refuses a blob that does not match its digest', async () => {
      const other = forged({ format: 1, files: [{ path: 'x', mode: 420, data: 'eA==' }] });
      await plant('kit', { digest: 'ab'.repeat(32), data: other.data });
      await refusedWritingNothing(`plugin "kit": stored blob refused: its bytes do not match its digest sha256:${'ab'.repeat(6)}…`);
    });

    it('refuses "../../x" and "/etc/..." planted in the JSON, even with a matching digest', async () => {
      await plant('kit', forged({ format: 1, files: [{ path: 'ok.md', mode: 420, data: 'eA==' }, { path: '../../x', mode: 420, data: 'eA==' }] }));
      await refusedWritingNothing('plugin "kit": stored blob refused: "../../x": the path has a ".." segment');
      await plant('kit', forged({ format: 1, files: [{ path: etcProbe, mode: 420, data: 'eA==' }] }));
      await refusedWritingNothing(`plugin "kit": stored blob refused: "${etcProbe}": an absolute path`);
    });

    it('refuses a huge file count', async () => {
      await plant('kit', forged({ format: 1, files: Array.from({ length: 2001 }, (_, i) => ({ path: `f${i}`, mode: 420, data: '' })) }));
      await refusedWritingNothing('plugin "kit": stored blob refused: blob.files: a plugin has at most 2000 files');
    });

    it('refuses a digest or a name that is a path', async () => {
      await plant('kit', { digest: '../../x', data: 'AAAA' });
      await refusedWritingNothing('plugin "kit": stored digest "../../x" refused: not a sha256 hex digest');
      await w.store.db.deleteFrom('plugins').execute();
      await add('kit', SAMPLE);
      await plugins.attach('alice', w.org.id, 'kit', { kind: 'org' });
      await w.store.db.updateTable('plugins').set({ name: '../../x' }).execute();
      await refusedWritingNothing('plugin "../../x": stored name refused');
    });
  });
});
