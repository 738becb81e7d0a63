#!/usr/bin/env node
// Thin launcher: the command lives in src/cli, compiled to dist/ by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tagbox: not built yet; run `npm run build` (or `npm run setup`) in the repository first\n');
  process.exit(1);
}
await import(entry.href);
