import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { clearMemory, KEEP_MEMORY_VERSIONS, latestMemory, memoryHistory, memoryVersion, saveMemory } from '../../src/sessions/memory-repo.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * Memory versions on both dialects, with two connections (two servers)
 * racing saves at the same scope: every save lands, under its own number.
 */
describe.each(BACKENDS)('channel memory in the store (%s)', (name) => {
  let backend: TestBackend;
  let a: ControlStore;
  let b: ControlStore;
  let scopeN = 0;
  const scope = () => `channel:c-${++scopeN}`;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    a = await openControlStore(backend.location);
    // Two pools on Postgres; one connection on SQLite (two in one process would block each other's event loop).
    b = name === 'postgres' ? await openControlStore(backend.location) : a;
  });
  afterAll(async () => {
    await a.close();
    if (b !== a) await b.close();
    await backend.cleanup();
  });

  it('numbers versions per scope, keeps what each session started from, and reads any of them', async () => {
    const s = scope();
    expect(await latestMemory(a.db, s)).toBeUndefined();
    const v1 = await saveMemory(a, { scope: s, content: 'remember: X\n', sessionId: 'thread-1', turnId: 'turn-1' });
    const v2 = await saveMemory(a, { scope: s, content: 'remember: X\nremember: 日本\n', sessionId: 'thread-2', baseVersion: 1 });
    await saveMemory(a, { scope: 'dm:someone', content: 'elsewhere', sessionId: 'thread-3' });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v2).toMatchObject({ scope: s, bytes: Buffer.byteLength('remember: X\nremember: 日本\n'), sessionId: 'thread-2', turnId: undefined, baseVersion: 1 });
    expect(await latestMemory(b.db, s)).toEqual(v2);
    expect(await memoryVersion(b.db, s, 1)).toEqual({ ...v1, baseVersion: undefined });
    expect(await memoryVersion(b.db, s, 3)).toBeUndefined();
    const history = await memoryHistory(b.db, s);
    expect(history.map((h) => [h.version, h.sessionId, h.bytes])).toEqual([
      [2, 'thread-2', v2.bytes],
      [1, 'thread-1', 12],
    ]);
    expect(history[0]).not.toHaveProperty('content');
  });

  it('lands every one of many racing saves, each under its own version (last writer wins)', async () => {
    const s = scope();
    const saves = await Promise.all(Array.from({ length: 12 }, (_, i) => saveMemory(i % 2 ? a : b, { scope: s, content: `writer ${i}\n`, sessionId: `thread-${i}`, baseVersion: 0 })));
    expect(saves.map((v) => v.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const history = await memoryHistory(a.db, s);
    expect(history).toHaveLength(12);
    expect(new Set(history.map((h) => h.sessionId)).size).toBe(12);
    // The latest is whichever save took the highest number; its content is that writer's.
    const latest = (await latestMemory(a.db, s))!;
    expect(latest.version).toBe(12);
    expect(latest.content).toBe(saves.find((v) => v.version === 12)!.content);
  });

  it('commits a save together with what runs within it, or not at all', async () => {
    const s = scope();
    const audit = new AuditLog(a);
    await saveMemory(a, { scope: s, content: 'one', sessionId: 't' }, async (db, saved) => {
      await audit.appendIn(db, [{ type: 'memory', action: 'update', scope: s, version: saved.version, session: 't', actor: 'system' }]);
    });
    await expect(
      saveMemory(a, { scope: s, content: 'two', sessionId: 't' }, async () => {
        throw new Error('the audit append failed');
      }),
    ).rejects.toThrow('the audit append failed');
    expect((await latestMemory(a.db, s))!.content).toBe('one');
    const events = await a.db.selectFrom('audit_events').select(['type', 'data']).where('type', '=', 'memory').execute();
    expect(events.map((e) => JSON.parse(e.data).scope)).toContain(s);
  });

  it('stores text as it is, multi-byte and all, up to the cap', async () => {
    const s = scope();
    const content = `${'ü🙂日\t'.repeat(4000)}\n`;
    await saveMemory(b, { scope: s, content, sessionId: 't' });
    expect((await latestMemory(a.db, s))!.content).toBe(content);
  });

  it('keeps the last versions only, and clear deletes every version of one scope', async () => {
    const s = scope();
    const other = scope();
    await saveMemory(a, { scope: other, content: 'kept', sessionId: 't' });
    for (let i = 0; i < KEEP_MEMORY_VERSIONS + 3; i++) await saveMemory(a, { scope: s, content: `v${i + 1}`, sessionId: 't' });
    const history = await memoryHistory(a.db, s);
    expect(history).toHaveLength(KEEP_MEMORY_VERSIONS);
    expect(history.at(-1)!.version).toBe(4);
    expect((await latestMemory(a.db, s))!.version).toBe(KEEP_MEMORY_VERSIONS + 3);
    expect(await clearMemory(b.db, s)).toBe(KEEP_MEMORY_VERSIONS);
    expect(await latestMemory(a.db, s)).toBeUndefined();
    expect(await memoryHistory(a.db, s)).toEqual([]);
    expect(await clearMemory(b.db, s)).toBe(0);
    expect((await latestMemory(a.db, other))!.content).toBe('kept');
    // After a clear the numbering starts again.
    expect((await saveMemory(a, { scope: s, content: 'fresh', sessionId: 't' })).version).toBe(1);
  });
});
