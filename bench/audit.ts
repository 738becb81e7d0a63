/**
 * Audit append benchmark: what signed checkpoints cost the writers. Run:
 *   npx tsx bench/audit.ts            (SQLite; BENCH_POSTGRES=1 adds the test Postgres)
 *
 * The proxy's shape: 8 concurrent producers append through one AuditWriter
 * (group commit) for a few seconds, without checkpoints (the baseline) and
 * with them (one per second at most, as in production), in alternating rounds
 * on fresh databases, so the ratio compares like with like on a noisy machine.
 * Then: the cost of the per-append hook, and of one checkpoint transaction.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { enableAuditCheckpoints, type AuditCheckpoints } from '../src/audit/checkpoints.js';
import { AuditLog } from '../src/audit/log.js';
import { AuditWriter } from '../src/proxy/audit-writer.js';
import type { StoreLocation } from '../src/store/connect.js';
import { openControlStore } from '../src/store/database.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PRODUCERS = 8;
const ROUNDS = 3;
const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-audit-'));
const PG = process.env.TAGBOX_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const event = (i: number) => ({ type: 'egress' as const, outcome: 'allowlist', method: 'GET', scheme: 'https', host: `h${i % 50}.bench.test`, port: 443, path: '/x', session: 's1', status: 200, bytes: 512, durationMs: 3 });

async function round(location: StoreLocation, withCheckpoints: boolean): Promise<{ perSec: number; checkpoints: number; loopP99us: number; loopMaxUs: number }> {
  const store = await openControlStore(location);
  let checkpoints: AuditCheckpoints | undefined;
  if (withCheckpoints) checkpoints = enableAuditCheckpoints(store, { keyFile: join(dir, 'audit-signing.key'), checkpointFile: join(dir, `cp-${randomBytes(4).toString('hex')}.json`) });
  const writer = new AuditWriter(new AuditLog(store));
  let count = 0;
  // How long the event loop was held up: what a checkpoint could add to a request's latency.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (performance.now() < end) await writer.append(event(count++));
    }),
  );
  const elapsed = (performance.now() - end + SECONDS * 1000) / 1000;
  loop.disable();
  await writer.close();
  await store.close();
  const reopened = await openControlStore(location);
  const cps = Number((await reopened.db.selectFrom('audit_checkpoints').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  await reopened.close();
  void checkpoints;
  return { perSec: count / elapsed, checkpoints: cps, loopP99us: loop.percentile(99) / 1000, loopMaxUs: loop.max / 1000 };
}

async function backend(name: string, fresh: () => Promise<StoreLocation>, cleanup: () => Promise<void>) {
  const base: number[] = [];
  const signed: number[] = [];
  const loops = { base: [] as number[], signed: [] as number[], baseMax: [] as number[], signedMax: [] as number[] };
  let cps = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const b = await round(await fresh(), false);
    base.push(b.perSec);
    loops.base.push(b.loopP99us);
    loops.baseMax.push(b.loopMaxUs);
    const s = await round(await fresh(), true);
    signed.push(s.perSec);
    loops.signed.push(s.loopP99us);
    loops.signedMax.push(s.loopMaxUs);
    cps += s.checkpoints;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const b = median(base);
  const s = median(signed);
  process.stdout.write(
    `${name.padEnd(9)} appends/s without checkpoints ${b.toFixed(0).padStart(7)}   with ${s.toFixed(0).padStart(7)}   ratio ${(s / b).toFixed(3)}   (${(cps / ROUNDS).toFixed(1)} checkpoints per ${SECONDS} s round; rounds ${base.map((x) => x.toFixed(0)).join('/')} vs ${signed.map((x) => x.toFixed(0)).join('/')})\n` +
      `${''.padEnd(9)} event-loop delay p99 without ${median(loops.base).toFixed(0)} µs, with ${median(loops.signed).toFixed(0)} µs; max without ${median(loops.baseMax).toFixed(0)} µs, with ${median(loops.signedMax).toFixed(0)} µs\n`,
  );

  // One checkpoint on its own: the transaction a writer runs at most once a second.
  const location = await fresh();
  const store = await openControlStore(location);
  const checkpoints = enableAuditCheckpoints(store, { keyFile: join(dir, 'audit-signing.key'), checkpointFile: join(dir, `one-${name}.json`), minIntervalMs: 3_600_000 });
  const log = new AuditLog(store);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    await log.appendMany([event(i), event(i + 1)]);
    const t = performance.now();
    await checkpoints.checkpoint();
    times.push((performance.now() - t) * 1000);
  }
  times.sort((x, y) => x - y);
  // The per-append hook while a checkpoint is already scheduled (the proxy's usual case).
  const n = 1_000_000;
  const t = performance.now();
  for (let i = 0; i < n; i++) checkpoints.noteAppended();
  const hookNs = ((performance.now() - t) * 1e6) / n;
  process.stdout.write(`${''.padEnd(9)} one checkpoint: p50 ${times[100]!.toFixed(0)} µs, p99 ${times[198]!.toFixed(0)} µs (sign + continuity check + insert + file write); per-append hook ${hookNs.toFixed(1)} ns\n`);
  await store.close();
  await cleanup();
}

try {
  process.stdout.write(`audit bench: ${PRODUCERS} producers through one group-committing AuditWriter, ${SECONDS} s rounds, median of ${ROUNDS}\n`);
  let k = 0;
  await backend('sqlite', async () => ({ dialect: 'sqlite', file: join(dir, `a${k++}.db`) }), async () => undefined);
  if (process.env.BENCH_POSTGRES) {
    const schemas: string[] = [];
    const { default: pg } = await import('pg');
    await backend(
      'postgres',
      async () => {
        const schema = `bench_audit_${Date.now().toString(36)}_${k++}`;
        schemas.push(schema);
        return { dialect: 'postgres', url: PG, schema };
      },
      async () => {
        const client = new pg.Client({ connectionString: PG });
        await client.connect();
        for (const s of schemas) await client.query(`drop schema if exists "${s}" cascade`);
        await client.end();
      },
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
