import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../src/audit/events.js';
import { AuditLog } from '../../src/audit/log.js';
import { AuditWriter } from '../../src/proxy/audit-writer.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * The proxy's group commit, on both stores: a durable append resolves only
 * once its event is in the database; a record follows within the batch; a lone
 * caller never waits on the clock; overlapping callers share commits; the
 * chain stays linear and in order.
 */
const egress = (i: number): AuditEventInput => ({ type: 'egress', outcome: 'allowlist', method: 'GET', scheme: 'https', host: `h${i}.example`, port: 443, path: `/${i}` });
const use = (i: number): AuditEventInput => ({ type: 'credential-use', outcome: 'opened', secret: 's', version: 1, connection: `c${i}`, actor: 'proxy' });

/** A real AuditLog that counts its transactions. */
class CountingLog extends AuditLog {
  commits = 0;
  override async appendMany(events: AuditEventInput[]) {
    this.commits += 1;
    return super.appendMany(events);
  }
}

describe.each(BACKENDS)('the proxy audit writer on %s', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;
  let log: CountingLog;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
    log = new CountingLog(store);
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  async function stored(): Promise<Array<Record<string, unknown>>> {
    const out = [];
    for await (const e of log.query()) out.push(e as unknown as Record<string, unknown>);
    return out;
  }

  it('a durable append has committed when it resolves, even with a window no test would wait for', async () => {
    const writer = new AuditWriter(log, undefined, { windowMs: 600_000 });
    await writer.append(use(1));
    expect((await stored()).map((e) => e.connection)).toEqual(['c1']);
    // The commit just happened, but one caller at a time never waits for company.
    await writer.append(use(2));
    await writer.append(use(3));
    expect((await stored()).map((e) => e.connection)).toEqual(['c1', 'c2', 'c3']);
  });

  it('a record on a quiet writer is committed on the next turn; on a busy one it waits for the window or a flush', async () => {
    const quiet = new AuditWriter(log, undefined, { windowMs: 600_000 });
    quiet.record(egress(1));
    // No flush: with a ten-minute window, only the quiet path can have written it.
    const deadline = Date.now() + 5000;
    while ((await stored()).length < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await stored()).map((e) => e.path)).toEqual(['/1']);

    const busy = new AuditWriter(log, undefined, { windowMs: 600_000 });
    await busy.append(use(9)); // it committed just now: busy
    busy.record(egress(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await stored()).map((e) => e.path ?? e.connection)).toEqual(['/1', 'c9']);
    // The next durable append takes it along, in order.
    await busy.append(use(10));
    expect((await stored()).map((e) => e.path ?? e.connection)).toEqual(['/1', 'c9', '/2', 'c10']);
  });

  it('a busy record is committed when its window ends', async () => {
    const writer = new AuditWriter(log, undefined, { windowMs: 30 });
    await writer.append(use(1));
    writer.record(egress(1));
    const deadline = Date.now() + 5000;
    while ((await stored()).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await stored()).map((e) => e.path ?? e.connection)).toEqual(['c1', '/1']);
  });

  it('overlapping durable appends share commits, and every one resolves committed, in order', async () => {
    const writer = new AuditWriter(log, undefined, { windowMs: 5 });
    // Waves of 20 requests that overlap, as on a loaded proxy: each wave's uses, then its ends.
    for (let wave = 0; wave < 10; wave++) {
      const ids = Array.from({ length: 20 }, (_, i) => wave * 20 + i);
      await Promise.all(ids.map((i) => writer.append(use(i))));
      for (const i of ids) writer.record(egress(i));
    }
    await writer.flush();
    const events = await stored();
    expect(events).toHaveLength(400);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // 400 events in far fewer transactions than events.
    expect(log.commits).toBeLessThanOrEqual(40);
    expect(await log.verify()).toMatchObject({ ok: true, events: 400 });
  });

  it('a batch of maxBatch events is committed without waiting for the window', async () => {
    const writer = new AuditWriter(log, undefined, { windowMs: 600_000, maxBatch: 8 });
    await writer.append(use(0));
    for (let i = 0; i < 8; i++) writer.record(egress(i));
    const deadline = Date.now() + 5000;
    while ((await stored()).length < 9 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await stored()).toHaveLength(9);
  });

  it('a failed commit rejects its durable appends (so no credential is sent) and the writer keeps working', async () => {
    const writer = new AuditWriter(log, undefined, { windowMs: 1 });
    const bad = { type: 'egress', outcome: 'allowlist', host: 'x', big: 1n } as unknown as AuditEventInput;
    await expect(writer.append(bad)).rejects.toThrow();
    await writer.append(use(1));
    expect((await stored()).map((e) => e.connection)).toEqual(['c1']);
    expect(await log.verify()).toMatchObject({ ok: true });
  });

  it('appendAll: batches sent together are committed in one transaction, in order, each resolved once durable', async () => {
    const writer = new AuditWriter(log);
    const first = writer.appendAll([egress(1), use(1)]);
    const second = writer.appendAll([egress(2)]);
    await first;
    expect((await stored()).map((e) => e.path ?? e.connection)).toEqual(['/1', 'c1', '/2']);
    await second;
    expect(log.commits).toBe(1);
    await writer.close();
  });
});
