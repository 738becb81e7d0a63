/**
 * Bundle files (access as code): YAML text -> validated, normalised bundles.
 * Pure: the caller reads the file (see load-bundle-file.ts). Every error is
 * exit 2 and names the file, the line, the bundle, the field and what was
 * expected, e.g.
 *   bundles.yaml:14: bundle "platform-eng", connection "github": bundles[0].connections[0].inject.header: "Host" is managed by the proxy ...
 */
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { invalidInput } from '../errors.js';
import { bundleFileSchema, personalConnectionSchema, type Bundle, type BundleFile, type Connection } from './bundle-schema.js';

const MAX_REPORTED = 20;

export function parseBundleFile(text: string, file: string): BundleFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line;
    throw invalidInput(`${file}${line ? `:${line}` : ''}: invalid YAML: ${first.message.split('\n')[0]}`, 'invalid_bundles');
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const locate = (path: readonly PropertyKey[]): number | undefined => {
    const node = doc.getIn(path as Iterable<unknown>, true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  return validateBundleFile(data, file, locate);
}

/**
 * Validates already-parsed data (for example JSON from the admin API).
 * `locate` maps a field path to a line, when the source has lines.
 */
export function validateBundleFile(
  data: unknown,
  source: string,
  locate: (path: readonly PropertyKey[]) => number | undefined = () => undefined,
): BundleFile {
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) {
    throw invalidInput(`${source}: expected a mapping with a "bundles" list at the top level`, 'invalid_bundles');
  }
  const result = bundleFileSchema.safeParse(data);
  if (result.success) return result.data as BundleFile;
  const issues = flattenIssues(result.error.issues, []);
  const lines = issues.slice(0, MAX_REPORTED).map((issue) => describeIssue(issue, data, source, locate));
  if (issues.length > MAX_REPORTED) lines.push(`${source}: ... and ${issues.length - MAX_REPORTED} more`);
  throw invalidInput(lines.join('\n'), 'invalid_bundles');
}

/** Validates bundles handed over as a list (the access layer's stored bundles). */
export function validateBundles(data: unknown, source: string): Bundle[] {
  return validateBundleFile({ bundles: data }, source).bundles;
}

/**
 * Validates one member's personal connector (see personalConnectionSchema):
 * exit 2, naming the field, e.g. `personal connector "gh": allowedWebsites[0]: ...`.
 */
export function validatePersonalConnector(data: unknown, source: string): Connection {
  const result = personalConnectionSchema.safeParse(data);
  if (result.success) return result.data as Connection;
  const issues = flattenIssues(result.error.issues, []);
  const lines = issues.slice(0, MAX_REPORTED).map((issue) => `${source}: ${formatPath(issue.path)}: ${expectation(issue)}`);
  throw invalidInput(lines.join('\n'), 'invalid_connector');
}

type Issue = z.core.$ZodIssue;

/**
 * Unions (a host entry is a string or {host, ports}) report every branch;
 * keep the branch that matched the input's type, so the message is about
 * what the admin wrote, not about the other shape.
 */
function flattenIssues(issues: readonly Issue[], prefix: readonly PropertyKey[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const relevant = issue.errors.filter((branch) => !(branch.length === 1 && branch[0]!.code === 'invalid_type' && branch[0]!.path.length === 0));
      if (relevant.length === 1) {
        out.push(...flattenIssues(relevant[0]!, path));
        continue;
      }
      out.push({ ...issue, path, message: 'expected a host pattern string or {host, ports}' } as Issue);
      continue;
    }
    out.push({ ...issue, path } as Issue);
  }
  return out;
}

function describeIssue(issue: Issue, data: unknown, source: string, locate: (path: readonly PropertyKey[]) => number | undefined): string {
  let line: number | undefined;
  for (let n = issue.path.length; n >= 0 && line === undefined; n--) line = locate(issue.path.slice(0, n));
  const where = line === undefined ? source : `${source}:${line}`;
  const owners = ownersOf(issue.path, data);
  const field = formatPath(issue.path);
  return `${where}: ${owners ? `${owners}: ` : ''}${field}: ${expectation(issue)}`;
}

/** `bundle "x", connection "y"` for an issue inside them, by name when they have one. */
function ownersOf(path: readonly PropertyKey[], data: unknown): string | undefined {
  if (path[0] !== 'bundles' || typeof path[1] !== 'number') return undefined;
  const bundle = at(data, ['bundles', path[1]]);
  const parts = [`bundle ${label(bundle, `#${path[1] + 1}`)}`];
  if (path[2] === 'connections' && typeof path[3] === 'number') {
    parts.push(`connection ${label(at(bundle, ['connections', path[3]]), `#${path[3] + 1}`)}`);
  }
  return parts.join(', ');
}

function label(node: unknown, fallback: string): string {
  const n = at(node, ['name']);
  return typeof n === 'string' && n.length > 0 ? JSON.stringify(n) : fallback;
}

function at(node: unknown, path: readonly PropertyKey[]): unknown {
  let cur = node;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

function expectation(issue: Issue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  if (issue.code === 'invalid_type') {
    const m = /received undefined$/.exec(issue.message);
    if (m) return `is required (expected ${issue.expected})`;
    return `expected ${issue.expected}${/received (\w+)/.exec(issue.message)?.[0] ? `, ${/received (\w+)/.exec(issue.message)![0]}` : ''}`;
  }
  return issue.message;
}
