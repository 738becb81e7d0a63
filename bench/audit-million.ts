/**
 * A million requests through the real `tagbox proxy` (half with the credential
 * injected, half allowlisted, 8 connections in all), then `tagbox audit verify`
 * on what it wrote: the chain must verify, and hold a credential-use event
 * for every credentialed request the upstream received and an egress event
 * for every request. Prints the throughput, the event counts and how long the
 * verification took.
 *
 * Knobs: BENCH_AUDIT_REQUESTS=1000000 (in all), BENCH_AUDIT_CONNECTIONS=4 (per half).
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { nextLine, runNode } from './node-children.js';
import { killChildren } from './proc-tree.js';
import type { LoadResult } from './proxy-report.js';
import { setUpProxyBench } from './proxy-setup.js';
import { cleanEnv, REPO_ROOT, TAGBOX_BIN } from './tagbox-up.js';

const REQUESTS = Number(process.env.BENCH_AUDIT_REQUESTS ?? 1_000_000);
const CONNECTIONS = Number(process.env.BENCH_AUDIT_CONNECTIONS ?? 4);

const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-audit-'));
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];
const cleanup = (): void => killChildren(children);
process.on('exit', cleanup);

function load(url: string, requests: number, proxyPort: number, caFile: string): Promise<LoadResult> {
  const spec = { mode: 'load', url, proxy: `http://127.0.0.1:${proxyPort}`, caFile, connections: CONNECTIONS, durationMs: 3_600_000, warmupMs: 0, maxRequests: requests };
  const child = runNode(children, 'proxy-load.ts', [JSON.stringify(spec)]);
  child.stdin!.end();
  return nextLine(child, 3_600_000).then((line) => JSON.parse(line) as LoadResult);
}

async function main(): Promise<void> {
  const { files, upstreamStats, tagbox } = await setUpProxyBench(children, dir);
  const half = Math.floor(REQUESTS / 2);
  const t0 = Date.now();
  const [credential, allowlist] = await Promise.all([
    load('https://api.bench.test/', half, tagbox.port, files.both),
    load('https://bench.test/', REQUESTS - half, tagbox.port, files.both),
  ]);
  const seconds = (Date.now() - t0) / 1000;
  const upstream = await upstreamStats();
  // SIGTERM: the proxy commits what it holds and closes its stores, as a stopped daemon does.
  tagbox.child.kill('SIGTERM');
  await new Promise((resolve) => tagbox.child.once('exit', resolve));

  const db = new Database(join(tagbox.home, 'tagbox.db'), { readonly: true });
  const counts = db.prepare('SELECT type, count(*) AS n FROM audit_events GROUP BY type').all() as Array<{ type: string; n: number }>;
  db.close();
  const v0 = Date.now();
  const verify = spawnSync(process.execPath, [TAGBOX_BIN, 'audit', 'verify'], { cwd: REPO_ROOT, env: cleanEnv({ TAGBOX_HOME: tagbox.home }), encoding: 'utf8', timeout: 3_600_000 });
  const verifySeconds = (Date.now() - v0) / 1000;

  const sent = credential.requests + allowlist.requests;
  process.stdout.write(
    [
      `requests through tagbox proxy: ${sent} answered 200 (${credential.requests} with the credential, ${allowlist.requests} allowlisted), ${credential.errors + allowlist.errors} errors, in ${seconds.toFixed(0)} s (${(sent / seconds).toFixed(0)} req/s)`,
      `the upstream received ${upstream.requests} requests, ${upstream.withCredential} with the credential`,
      `audit events by type: ${counts.map((c) => `${c.type} ${c.n}`).join(', ')}`,
      `tagbox audit verify: exit ${verify.status} in ${verifySeconds.toFixed(1)} s: ${(verify.stdout + verify.stderr).trim()}`,
      '',
    ].join('\n'),
  );
  const byType = new Map(counts.map((c) => [c.type, c.n]));
  const ok = verify.status === 0 && (byType.get('egress') ?? 0) >= upstream.requests && (byType.get('credential-use') ?? 0) >= upstream.withCredential;
  if (!ok) throw new Error('the audit does not account for every request, or its chain does not verify');
}

main().then(
  () => {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    cleanup();
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  },
);
