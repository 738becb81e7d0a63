import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

describe.each(BACKENDS)('audit log on %s', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;
  let log: AuditLog;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
    log = new AuditLog(store);
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  async function seed(n: number) {
    for (let i = 0; i < n; i++) {
      await log.append({ type: 'egress', outcome: i % 2 ? 'allowlist' : 'blocked', method: 'GET', scheme: 'https', host: `h${i}.example`, port: 443, path: '/' });
    }
  }

  it('chains events and verifies an intact log', async () => {
    await seed(5);
    const events = [];
    for await (const e of log.query()) events.push(e);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(events.map((e) => e.hash)).size).toBe(5);
    expect(await log.verify()).toMatchObject({ ok: true, events: 5 });
  });

  it('names the first event whose row was edited directly in the database', async () => {
    await seed(5);
    await sql`update audit_events set data = replace(data, 'h2.example', 'h2.evil') where seq = 3`.execute(store.db);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.broken).toMatchObject({ seq: 3, type: 'egress' });
  });

  it('notices a deleted event and a deleted head', async () => {
    await seed(4);
    await sql`delete from audit_events where seq = 2`.execute(store.db);
    const gap = await log.verify();
    expect(gap.ok).toBe(false);
    if (!gap.ok) expect(gap.broken.seq).toBe(3);

    await sql`delete from audit_events where seq = 1`.execute(store.db);
    const head = await log.verify();
    expect(head.ok).toBe(false);
  });

  it('notices a recomputed hash that no longer links to the next event', async () => {
    await seed(3);
    await sql`update audit_events set hash = ${'f'.repeat(64)} where seq = 2`.execute(store.db);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.broken.seq).toBe(2);
  });

  it('filters by type and time, oldest first', async () => {
    await log.append({ type: 'admin-change', actor: 'ada', ts: '2026-01-01T00:00:00.000Z', target: 'bundle:eng' });
    await log.append({ type: 'egress', outcome: 'blocked', ts: '2026-01-02T00:00:00.000Z', host: 'x' });
    await log.append({ type: 'egress', outcome: 'allowlist', ts: '2026-01-03T00:00:00.000Z', host: 'y' });
    const egress = [];
    for await (const e of log.query({ type: 'egress', since: '2026-01-02T12:00:00.000Z' })) egress.push(e);
    expect(egress.map((e) => e.host)).toEqual(['y']);
    const byActor = [];
    for await (const e of log.query({ actor: 'ada' })) byActor.push(e.type);
    expect(byActor).toEqual(['admin-change']);
  });

  it('keeps one linear chain when two processes append at once', async () => {
    // Two separate OS processes, each appending through its own connection.
    const script = `
      import { AuditLog } from './src/audit/log.ts';
      import { openControlStore } from './src/store/database.ts';
      const store = await openControlStore(JSON.parse(process.env.LOC));
      const log = new AuditLog(store);
      for (let i = 0; i < 40; i++) await log.append({ type: 'egress', outcome: 'allowlist', host: process.env.WHO + i });
      await store.close();
    `;
    const { spawn } = await import('node:child_process');
    const run = (who: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          env: { ...process.env, LOC: JSON.stringify(backend.location), WHO: who },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        child.on('close', resolve);
      });
    expect(await Promise.all([run('a'), run('b')])).toEqual([0, 0]);
    expect(await log.verify()).toMatchObject({ ok: true, events: 80 });
  });

  it('exports JSON Lines and verifies through the CLI', async () => {
    await store.close();
    const cliStore = await openControlStore(backend.location);
    await new AuditLog(cliStore).append({ type: 'egress', outcome: 'blocked', method: 'GET', scheme: 'http', host: 'evil.example', port: 80, path: '/' });
    await cliStore.close();

    const exported = await runTagbox(['audit', 'export', '--type', 'egress'], { env: backend.env });
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'egress', outcome: 'blocked', host: 'evil.example', seq: 1 });
    expect(Date.parse(lines[0]!.ts as string)).not.toBeNaN();

    expect((await runTagbox(['audit', 'verify'], { env: backend.env })).code).toBe(0);
    const bad = await runTagbox(['audit', 'export', '--since', 'yesterday'], { env: backend.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since');

    store = await openControlStore(backend.location);
    await sql`update audit_events set outcome = 'allowlist', data = replace(data, 'blocked', 'allowlist') where seq = 1`.execute(store.db);
    const broken = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken at event 1 \(egress/);
  });
});
