/**
 * npm run bench — every benchmark, one after another, each printing its own
 * ratios against a baseline measured in the same run (this machine is shared
 * and noisy: compare ratios, not absolute figures).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = ['policy.ts', 'vault.ts', 'proxy.ts', 'proxy-workers.ts', 'audit-million.ts', 'sandbox.ts', 'sessions.ts', 'engine.ts', 'web.ts', 'slack.ts', 'github.ts'];
const dir = fileURLToPath(new URL('.', import.meta.url));
let failed = 0;
for (const bench of benches) {
  process.stdout.write(`\n=== bench/${bench} ===\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${bench}`], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    failed += 1;
    process.stdout.write(`bench/${bench} failed (exit ${r.status})\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
