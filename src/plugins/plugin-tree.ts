/**
 * A plugin as a tree of plain files: relative paths, two modes, bytes. Pure.
 * The same checks run on a directory read from disk, on a console upload and
 * on a blob read back from the database (which is treated as hostile), so a
 * path that could leave the plugin's root never reaches a filesystem call.
 */
import { invalidInput } from '../errors.js';

/** Files are stored 0644 or 0755 (executable); nothing else (no setuid, no group or world write). */
export type PluginMode = 0o644 | 0o755;

export interface PluginFile {
  /** Relative, `/`-separated, no `.` or `..` segments. */
  path: string;
  mode: PluginMode;
  data: Buffer;
}

export const PLUGIN_LIMITS = {
  maxFiles: 2000,
  maxBytes: 20 * 1024 * 1024,
  maxPathBytes: 1024,
  maxSegmentBytes: 255,
} as const;

/** The name an admin gives a plugin (`--name`): its mount point `/opt/tagbox/plugins/<name>` in the sandbox. */
export const PLUGIN_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function pluginNameProblem(name: unknown): string | undefined {
  if (typeof name === 'string' && PLUGIN_NAME_PATTERN.test(name)) return undefined;
  return `${JSON.stringify(name)}: expected ${PLUGIN_NAME_PATTERN.source} (lower-case letters, digits and hyphens, at most 63, not starting with a hyphen)`;
}

// Lone surrogates cannot be encoded as UTF-8; paired ones are single code points under the u flag.
const LONE_SURROGATE = /\p{Cs}/u;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why a relative path may not be part of a plugin; undefined when it may. */
export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return 'expected a path (text)';
  if (path === '') return 'an empty path';
  if (path.includes('\u0000')) return 'the path contains NUL';
  if (CONTROL.test(path)) return 'the path contains a control character';
  if (LONE_SURROGATE.test(path)) return 'the path is not UTF-8';
  if (path.startsWith('/')) return 'an absolute path (expected a path relative to the plugin root)';
  if (path.includes('\\')) return 'the path contains a backslash';
  if (Buffer.byteLength(path) > PLUGIN_LIMITS.maxPathBytes) return `the path is longer than ${PLUGIN_LIMITS.maxPathBytes} bytes`;
  for (const segment of path.split('/')) {
    if (segment === '') return 'the path has an empty segment (a leading, doubled or trailing "/")';
    if (segment === '..') return 'the path has a ".." segment';
    if (segment === '.') return 'the path has a "." segment';
    if (Buffer.byteLength(segment) > PLUGIN_LIMITS.maxSegmentBytes) return `a path segment is longer than ${PLUGIN_LIMITS.maxSegmentBytes} bytes`;
  }
  return undefined;
}

/** A path as it may be shown in a message: as is when plain, JSON-quoted when it holds anything odd. */
export function shownPath(path: string): string {
  return /^[\x21-\x7e][\x20-\x7e]*$/.test(path) ? path : JSON.stringify(path);
}

/** Names a file in a message: `label(path)`, e.g. `DIR/skills/x/SKILL.md` or `body.files "x"`. */
export type PathLabel = (path: string) => string;

export const plainLabel: PathLabel = (path) => shownPath(path);

/**
 * Checks a whole tree and returns it sorted by path (the canonical order).
 * Refused, exit 2, naming the file: a bad path or mode, a path given twice, a
 * path that is a file and also a directory of another file, more than
 * PLUGIN_LIMITS files or bytes.
 */
export function checkTree(files: readonly PluginFile[], label: PathLabel = plainLabel, where = 'plugin'): PluginFile[] {
  if (files.length > PLUGIN_LIMITS.maxFiles) throw invalidInput(`${where}: ${files.length} files; a plugin has at most ${PLUGIN_LIMITS.maxFiles}`, 'invalid_plugin');
  let total = 0;
  const paths = new Set<string>();
  for (const file of files) {
    const problem = pathProblem(file.path);
    if (problem) throw invalidInput(`${typeof file.path === 'string' ? label(file.path) : where}: ${problem}`, 'invalid_plugin');
    if (file.mode !== 0o644 && file.mode !== 0o755) throw invalidInput(`${label(file.path)}: mode ${String(file.mode)}: expected 0644 or 0755`, 'invalid_plugin');
    if (!Buffer.isBuffer(file.data)) throw invalidInput(`${label(file.path)}: expected the file's bytes`, 'invalid_plugin');
    if (paths.has(file.path)) throw invalidInput(`${label(file.path)}: given twice`, 'invalid_plugin');
    paths.add(file.path);
    total += file.data.length;
    if (total > PLUGIN_LIMITS.maxBytes) throw invalidInput(`${label(file.path)}: the plugin is larger than ${PLUGIN_LIMITS.maxBytes / 1024 / 1024} MiB in total`, 'invalid_plugin');
  }
  for (const path of paths) {
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (paths.has(dir)) throw invalidInput(`${label(dir)}: is a file and also the directory of ${shownPath(path)}`, 'invalid_plugin');
    }
  }
  return [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The stored mode of a file with these permission bits: executable by anyone, or not. */
export function modeOf(permissions: number): PluginMode {
  return permissions & 0o111 ? 0o755 : 0o644;
}
