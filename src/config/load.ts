import { existsSync, readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { invalidInput } from '../errors.js';
import { envBindings } from './env.js';
import { configSchema, type TagboxConfig } from './schema.js';

export interface LoadedConfig {
  config: TagboxConfig;
  /** The file that was read, or undefined when only defaults and env applied. */
  file: string | undefined;
}

/**
 * Loads tagbox.yaml (if present; an explicit --config must exist), overlays
 * TAGBOX_* variables, and validates. Invalid input throws an exit-2 error that
 * names the file and line (or the variable), the key path and what was expected.
 */
export function loadConfig(options: { file: string; explicit: boolean; env?: NodeJS.ProcessEnv }): LoadedConfig {
  const env = options.env ?? process.env;
  const { file, explicit } = options;
  let raw: Record<string, unknown> = {};
  let locate: (path: PropertyKey[]) => string | undefined = () => undefined;
  let source: string | undefined;

  if (existsSync(file)) {
    source = file;
    const text = readFileSync(file, 'utf8');
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = first.linePos?.[0]?.line;
      throw invalidInput(`${file}${line ? `:${line}` : ''}: invalid YAML: ${first.message.split('\n')[0]}`, 'invalid_config');
    }
    const parsed: unknown = doc.toJS() ?? {};
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw invalidInput(`${file}: expected a mapping of settings at the top level`, 'invalid_config');
    }
    raw = parsed as Record<string, unknown>;
    locate = (path) => {
      const node = doc.getIn(path as Iterable<unknown>, true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      return offset === undefined ? undefined : `${file}:${lineCounter.linePos(offset).line}`;
    };
  } else if (explicit) {
    throw invalidInput(`${file}: config file not found`, 'invalid_config');
  }

  const fromEnv = new Map<string, string>();
  for (const binding of envBindings(configSchema)) {
    const value = env[binding.variable];
    if (value === undefined) continue;
    setIn(raw, binding.path, binding.parse(value));
    fromEnv.set(binding.path.join('.'), binding.variable);
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw invalidInput(formatIssues(result.error.issues, { file: source ?? file, locate, fromEnv }), 'invalid_config');
  }
  return { config: result.data, file: source };
}

function setIn(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function formatIssues(
  issues: z.core.$ZodIssue[],
  ctx: { file: string; locate: (path: PropertyKey[]) => string | undefined; fromEnv: Map<string, string> },
): string {
  return issues
    .map((issue) => {
      const keyPath = issue.path.map(String).join('.') || '(top level)';
      const variable = [...ctx.fromEnv.entries()].find(([p]) => keyPath === p || keyPath.startsWith(`${p}.`))?.[1];
      let where: string;
      if (variable) where = `${variable} (${keyPath})`;
      else {
        // Point at the deepest node that exists in the file.
        let located: string | undefined;
        if (issue.code === 'unrecognized_keys') located = ctx.locate([...issue.path, issue.keys[0]!]);
        for (let n = issue.path.length; n >= 0 && !located; n--) located = ctx.locate(issue.path.slice(0, n));
        where = `${located ?? ctx.file}: ${keyPath}`;
      }
      let expected = issue.message;
      if (issue.code === 'unrecognized_keys') {
        expected = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      }
      return `${where}: ${expected}`;
    })
    .join('\n');
}
