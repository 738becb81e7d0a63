import type { Command } from 'commander';
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the Tagbox version')
    .action(() => {
      process.stdout.write(`tagbox ${packageVersion()} (node ${process.versions.node})\n`);
    });
}
