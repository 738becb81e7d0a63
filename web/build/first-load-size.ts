import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

/** The budget for the JavaScript a first visit downloads (gzipped). */
export const FIRST_LOAD_BUDGET_BYTES = 200 * 1024;

interface ChunkLike {
  type: 'chunk' | 'asset';
  fileName: string;
  isEntry?: boolean;
  imports?: string[];
  code?: string;
}

/** The entry chunk and everything it imports statically: what the first page load fetches. */
export function firstLoadFiles(bundle: Record<string, ChunkLike>): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    const chunk = bundle[name];
    if (!chunk || chunk.type !== 'chunk' || seen.has(name)) return;
    seen.add(name);
    for (const dep of chunk.imports ?? []) visit(dep);
  };
  for (const [name, chunk] of Object.entries(bundle)) if (chunk.type === 'chunk' && chunk.isEntry) visit(name);
  return [...seen];
}

/**
 * Measures the first load's gzipped JavaScript at build time, prints it, writes
 * it beside the app (first-load.json, read by the web bench), and fails the
 * build when it is over budget: the size is checked on every build, not hoped for.
 */
export function firstLoadSize(): Plugin {
  return {
    name: 'tagbox-first-load-size',
    apply: 'build',
    generateBundle(_options, bundle) {
      const chunks = bundle as unknown as Record<string, ChunkLike>;
      const files = firstLoadFiles(chunks);
      const gzipped = files.reduce((sum, f) => sum + gzipSync(chunks[f]!.code ?? '', { level: 9 }).length, 0);
      const raw = files.reduce((sum, f) => sum + Buffer.byteLength(chunks[f]!.code ?? ''), 0);
      const line = `web: first load ${(gzipped / 1024).toFixed(1)} KB gzipped JavaScript (${(raw / 1024).toFixed(1)} KB raw, ${files.length} file(s); budget ${FIRST_LOAD_BUDGET_BYTES / 1024} KB)`;
      this.info(line);
      this.emitFile({ type: 'asset', fileName: 'first-load.json', source: `${JSON.stringify({ files, gzipBytes: gzipped, rawBytes: raw, budgetBytes: FIRST_LOAD_BUDGET_BYTES })}\n` });
      if (gzipped > FIRST_LOAD_BUDGET_BYTES) this.error(`${line}: over budget`);
    },
  };
}
