import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { sql } from 'kysely';
import { auditCheckpointOptions, enableAuditCheckpoints } from '../../src/audit/checkpoints.js';
import { AuditLog } from '../../src/audit/log.js';
import { pruneAudit } from '../../src/audit/retention.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

describe.each(BACKENDS)('audit retention on %s', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;
  let log: AuditLog;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
    // As the CLI and the server open it: the key and the external checkpoint in this home.
    enableAuditCheckpoints(store, auditCheckpointOptions(backend.home));
    log = new AuditLog(store);
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  /** Ten egress events, one a day from 2026-01-01. */
  async function seedDays(n = 10) {
    for (let i = 0; i < n; i++) {
      await log.append({ type: 'egress', outcome: 'allowlist', ts: `2026-01-${String(i + 1).padStart(2, '0')}T12:00:00.000Z`, host: `h${i}.example` });
    }
  }
  const CUT = '2026-01-05T00:00:00.000Z';

  it('prunes the old prefix, moves the anchor, and what remains verifies', async () => {
    await seedDays();
    const dry = await pruneAudit(store, { before: CUT, dryRun: true });
    expect(dry).toMatchObject({ pruned: 4, dryRun: true });
    expect(await log.verify()).toMatchObject({ ok: true, events: 10 });

    const result = await pruneAudit(store, { before: CUT, actor: 'ada' });
    expect(result).toMatchObject({ pruned: 4, anchorSeq: 4, dryRun: false });
    const anchor = await store.db.selectFrom('audit_anchor').select(['seq', 'hash']).execute();
    expect(anchor).toHaveLength(1);
    expect(anchor[0]!.seq).toBe(4);

    const remaining = [];
    for await (const e of log.query()) remaining.push(e);
    // 6 retained plus the admin-change event that records the prune.
    expect(remaining.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(remaining.at(-1)).toMatchObject({ type: 'admin-change', actor: 'ada', target: 'audit-retention', pruned: 4 });
    expect(await log.verify()).toMatchObject({ ok: true, events: 7 });

    // Appends keep chaining after a prune.
    await log.append({ type: 'egress', outcome: 'blocked', host: 'later.example' });
    expect(await log.verify()).toMatchObject({ ok: true, events: 8 });
  });

  it('is idempotent', async () => {
    await seedDays();
    expect((await pruneAudit(store, { before: CUT })).pruned).toBe(4);
    const again = await pruneAudit(store, { before: CUT });
    expect(again).toMatchObject({ pruned: 0, anchorSeq: 4 });
    expect(await log.verify()).toMatchObject({ ok: true, events: 7 });
  });

  it('prunes everything when every event is older, and the chain continues from the anchor', async () => {
    await seedDays(3);
    expect((await pruneAudit(store, { before: '2027-01-01T00:00:00Z' })).pruned).toBe(3);
    // Only the record of the prune remains.
    expect(await log.verify()).toMatchObject({ ok: true, events: 1 });
  });

  it('retentionDays counts back from now', async () => {
    await seedDays();
    const result = await pruneAudit(store, { retentionDays: 10, now: new Date('2026-01-15T00:00:00Z') });
    expect(result).toMatchObject({ before: CUT, pruned: 4 });
  });

  it('detects an edit inside the retained part after a prune, naming the event', async () => {
    await seedDays();
    await pruneAudit(store, { before: CUT });
    await sql`update audit_events set data = replace(data, 'h6.example', 'h6.evil') where seq = 7`.execute(store.db);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.broken).toMatchObject({ seq: 7, type: 'egress' });
  });

  it('detects the first retained event deleted by hand (the anchor not moved)', async () => {
    await seedDays();
    await pruneAudit(store, { before: CUT });
    await sql`delete from audit_events where seq = 5`.execute(store.db);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.broken.seq).toBe(6);
  });

  it('without any prune, deleting the head by hand still fails verify', async () => {
    await seedDays(4);
    await sql`delete from audit_events where seq <= 2`.execute(store.db);
    expect((await log.verify()).ok).toBe(false);
  });

  it('refuses to prune over a tampered stretch', async () => {
    await seedDays();
    await sql`update audit_events set data = replace(data, 'h1.example', 'h1.evil') where seq = 2`.execute(store.db);
    await expect(pruneAudit(store, { before: CUT })).rejects.toThrow(/event 2/);
    expect(await store.db.selectFrom('audit_anchor').selectAll().execute()).toEqual([]);
  });

  it('keeps one valid chain when another process appends during prunes', async () => {
    await seedDays();
    const script = `
      import { AuditLog } from './src/audit/log.ts';
      import { openControlStore } from './src/store/database.ts';
      const store = await openControlStore(JSON.parse(process.env.LOC));
      const log = new AuditLog(store);
      for (let i = 0; i < 80; i++) await log.append({ type: 'egress', outcome: 'allowlist', host: 'c' + i + '.example' });
      await store.close();
    `;
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, LOC: JSON.stringify(backend.location) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    let done = false;
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => ((done = true), resolve(code))));
    let pruned = 0;
    onTestFinished(() => void child.kill());
    // Prune everything up to "now", over and over, while the child appends.
    do {
      pruned += (await pruneAudit(store, { before: new Date().toISOString() })).pruned;
      await new Promise((r) => setTimeout(r, 5));
    } while (!done);
    expect(await exited).toBe(0);
    pruned += (await pruneAudit(store, { before: new Date(Date.now() + 1000).toISOString() })).pruned;

    const result = await log.verify();
    expect(result.ok).toBe(true);
    const anchor = await store.db.selectFrom('audit_anchor').select('seq').executeTakeFirstOrThrow();
    const head = await store.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirstOrThrow();
    // Every event ever appended is either pruned (counted) or retained and verified.
    expect(Number(head.seq)).toBe(anchor.seq + result.events);
    expect(pruned + result.events).toBe(Number(head.seq));
  });

  it('keeps one valid chain when another connection of this process appends during prunes', async () => {
    await seedDays();
    const other = await openControlStore(backend.location);
    try {
      const otherLog = new AuditLog(other);
      let pruned = 0;
      await Promise.all([
        (async () => {
          for (let i = 0; i < 50; i++) await otherLog.append({ type: 'egress', outcome: 'allowlist', host: `c${i}.example` });
        })(),
        (async () => {
          for (let i = 0; i < 10; i++) pruned += (await pruneAudit(store, { before: new Date().toISOString() })).pruned;
        })(),
      ]);
      const result = await log.verify();
      expect(result.ok).toBe(true);
      const head = await store.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirstOrThrow();
      expect(pruned + result.events).toBe(Number(head.seq));
    } finally {
      await other.close();
    }
  });

  it('prunes through the CLI, with a dry run and exit codes', async () => {
    await seedDays();
    const env = backend.env;
    const dry = await runTagbox(['audit', 'prune', '--before', CUT, '--dry-run'], { env });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('would prune 4 events');

    const real = await runTagbox(['audit', 'prune', '--before', CUT], { env });
    expect(real.code).toBe(0);
    expect(real.stdout).toContain('pruned 4 events');
    expect((await runTagbox(['audit', 'verify'], { env })).code).toBe(0);

    // The seeded events are months old: --older-than 1 takes them, not the fresh record of the first prune.
    const days = await runTagbox(['audit', 'prune', '--older-than', '1'], { env });
    expect(days.code).toBe(0);
    expect(days.stdout).toContain('pruned 6 events');
    expect((await runTagbox(['audit', 'verify'], { env })).code).toBe(0);

    expect((await runTagbox(['audit', 'prune'], { env })).code).toBe(2);
    expect((await runTagbox(['audit', 'prune', '--older-than', '1', '--before', CUT], { env })).code).toBe(2);
    const badDays = await runTagbox(['audit', 'prune', '--older-than', 'soon'], { env });
    expect(badDays.code).toBe(2);
    expect(badDays.stderr).toContain('--older-than');
    expect((await runTagbox(['audit', 'prune', '--before', 'yesterday'], { env })).code).toBe(2);
  });
});
