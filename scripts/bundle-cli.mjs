// Bundles the built CLI (dist/cli/main.js) into dist/bundle/ with esbuild (run by `npm run build`,
// after tsc). Loading one file and a few chunks instead of hundreds of modules is most of
// `tagbox exec`'s start-up (docs/SANDBOX.md, "Start-up of tagbox exec"); bin/tagbox.js uses the
// bundle for `exec` when it is not older than dist/cli/exec.js. Verbs load as chunks of their own
// (code splitting keeps the dynamic imports of main.ts lazy). Packages with native parts, worker
// threads or optional requires stay external and load from node_modules as before.
// dist/bundle/ is two levels below the checkout like dist/<dir>/, so paths the code makes from
// import.meta.url (native/build, package.json) resolve alike; exec's audit worker is an entry of
// its own, beside the chunk that starts it, as dist/cli/exec-audit-worker.js is beside exec.js.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;

const EXTERNAL = [
  'better-sqlite3', 'pg', 'pg-native', 'pino-pretty', 'thread-stream',
  '@anthropic-ai/*', 'playwright-core', 'fastify', '@fastify/*', '@slack/*', 'openid-client',
];

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: `${root}dist/cli/main.js`, 'exec-audit-worker': `${root}dist/cli/exec-audit-worker.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  logLevel: 'warning',
  // CommonJS packages in an ES bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __tagboxCreateRequire } from 'node:module'; const require = __tagboxCreateRequire(import.meta.url);" },
});
