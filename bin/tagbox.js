#!/usr/bin/env node
// Thin launcher: the command lives in src/cli, compiled to dist/ by `npm run build`.
// `tagbox exec` starts from the esbuild bundle of the same code (dist/bundle, made by
// scripts/bundle-cli.mjs) when it is there and not older than the compiled exec verb:
// one file instead of hundreds of modules is most of its start-up (docs/SANDBOX.md).
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tagbox: not built yet; run `npm run build` (or `npm run setup`) in the repository first\n');
  process.exit(1);
}
const bundle = verb(process.argv) === 'exec' ? bundled() : undefined;
// With `tagbox up` running on the home, exec hands its command over (src/cli/exec-hand-off.ts)
// and needs no worker: started anyway, it would take the CPU the server runs the command on.
if (bundle && !existsSync(join(home(process.argv), 'run', 'exec.sock'))) {
  // exec's audit worker (src/cli/exec-audit-worker.ts) loads its libraries on another CPU:
  // started here, before the CLI's own modules load, it is ready sooner. exec adopts it.
  const { Worker } = await import('node:worker_threads');
  // Unreferenced until exec adopts it: if exec never gets that far (a usage error), it holds nothing open.
  const worker = new Worker(new URL('exec-audit-worker.js', bundle));
  worker.unref();
  globalThis[Symbol.for('tagbox.execAuditWorker')] = worker;
}
await import(bundle ?? entry.href);

/** The first word that is not a global option or its value (as src/cli/main.ts reads it). */
function verb(argv) {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--home' || arg === '--config') i += 1;
    else if (!arg.startsWith('-')) return arg;
    else if (arg === '--') return undefined;
  }
  return undefined;
}

/** TAGBOX_HOME as src/home.ts resolves it: --home, then the environment, then ~/.tagbox. */
function home(argv) {
  const flag = argv.indexOf('--home');
  const i = argv.indexOf('--');
  return resolve(flag > 1 && (i < 0 || flag < i) ? argv[flag + 1] : (process.env.TAGBOX_HOME ?? join(homedir(), '.tagbox')));
}

/** The bundle's entry, when it is at least as new as the compiled exec verb; otherwise undefined. */
function bundled() {
  const bundle = new URL('../dist/bundle/main.js', import.meta.url);
  try {
    const compiled = statSync(new URL('../dist/cli/exec.js', import.meta.url)).mtimeMs;
    return statSync(bundle).mtimeMs >= compiled ? bundle.href : undefined;
  } catch {
    return undefined;
  }
}
