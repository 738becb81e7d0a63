/**
 * YAML frontmatter of a Markdown file (skills, commands, agents): the block
 * between a first line `---` and the next line `---`. Pure. Aliases are
 * capped so that a few lines cannot expand into gigabytes.
 */
import { parseDocument } from 'yaml';
import type { Result } from '../policy/hosts.js';

const OPEN = /^---[ \t]*\r?\n/;
const CLOSE = /^(?:---|\.\.\.)[ \t]*$/;

/** `value` is undefined when the text has no frontmatter at all. */
export function parseFrontmatter(text: string): Result<Record<string, unknown> | undefined> {
  const open = OPEN.exec(text);
  if (!open) return { ok: true, value: undefined };
  const lines = text.slice(open[0].length).split(/\r?\n/);
  const end = lines.findIndex((line) => CLOSE.test(line));
  if (end < 0) return { ok: false, error: 'frontmatter: no closing "---" line' };
  const source = lines.slice(0, end).join('\n');
  const doc = parseDocument(source, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    // +1: the opening `---` is line 1 of the file.
    const line = first.linePos?.[0]?.line;
    return { ok: false, error: `frontmatter${line ? ` line ${line + 1}` : ''}: invalid YAML: ${first.message.split('\n')[0]}` };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 50 });
  } catch (error) {
    return { ok: false, error: `frontmatter: invalid YAML: ${(error as Error).message.split('\n')[0]}` };
  }
  if (data === null || data === undefined) return { ok: true, value: {} };
  if (typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: 'frontmatter: expected a mapping of fields (name: ..., description: ...)' };
  return { ok: true, value: data as Record<string, unknown> };
}
