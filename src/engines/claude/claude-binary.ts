import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ReadOnlyMount } from '../../sandbox/types.js';

/** Where the engine's binary appears inside every sandbox (read-only). */
export const CLAUDE_DIR_INSIDE = '/opt/tagbox/claude';
export const CLAUDE_BINARY_INSIDE = `${CLAUDE_DIR_INSIDE}/claude`;

/**
 * The `claude` binary of the installed optional dependency: it ships inside
 * the registry package for this platform (nothing is downloaded at run
 * time). Undefined when the engine is not installed here.
 */
export function findClaudeBinary(): { dir: string; binary: string; version: string } | undefined {
  const require = createRequire(import.meta.url);
  let sdkVersion: string;
  try {
    // The package exports no ./package.json: read it beside its entry point.
    const entry = require.resolve('@anthropic-ai/claude-agent-sdk');
    sdkVersion = (JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
  for (const name of platformPackages()) {
    try {
      const dir = dirname(require.resolve(`${name}/package.json`));
      const binary = join(dir, 'claude');
      if (existsSync(binary)) return { dir, binary, version: sdkVersion };
    } catch {
      // not this one
    }
  }
  return undefined;
}

export function claudeMount(dir: string): ReadOnlyMount {
  return { source: dir, target: CLAUDE_DIR_INSIDE };
}

function platformPackages(): string[] {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const base = `@anthropic-ai/claude-agent-sdk-${process.platform}-${arch}`;
  if (process.platform !== 'linux') return [base];
  // The sandbox's /usr is the host's: the build for the host's C library.
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime ? [base] : [`${base}-musl`];
}
