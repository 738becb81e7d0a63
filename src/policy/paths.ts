/**
 * Request paths, normalised for matching a connection's `pathPrefix`.
 * The proxy forwards the path as the client sent it; this form only decides.
 * Where upstream servers disagree on what a path means (encoded slashes,
 * backslashes, NULs, double encoding, `..;` parameters), the path is marked
 * unsafe and never matches a prefix: fail closed. Paths are case-sensitive.
 */
import type { Result } from './hosts.js';

export interface NormalisedPath {
  /** Query and fragment removed, unreserved escapes decoded, other escapes upper-cased, dot-segments resolved. */
  readonly path: string;
  /** Why this path must not be trusted for prefix matching; absent when safe. */
  readonly unsafe?: string;
}

const HEX = /^[0-9a-fA-F]{2}$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

export function normalisePath(raw: string): NormalisedPath {
  let end = raw.length;
  const q = raw.indexOf('?');
  if (q >= 0) end = q;
  const h = raw.indexOf('#');
  if (h >= 0 && h < end) end = h;
  const target = raw.slice(0, end) || '/';
  if (isPlainPath(target)) return { path: target };

  let unsafe: string | undefined;
  const flag = (why: string) => {
    unsafe ??= why;
  };
  if (!target.startsWith('/')) flag('the path is not absolute');

  let decoded = '';
  for (let i = 0; i < target.length; i++) {
    const ch = target[i]!;
    const code = ch.charCodeAt(0);
    if (ch === '%') {
      const hex = target.slice(i + 1, i + 3);
      if (!HEX.test(hex)) {
        flag('invalid percent-encoding');
        decoded += ch;
        continue;
      }
      const byte = parseInt(hex, 16);
      const char = String.fromCharCode(byte);
      i += 2;
      if (UNRESERVED.test(char)) {
        decoded += char;
        continue;
      }
      if (byte === 0x2f || byte === 0x5c) flag('an encoded slash or backslash');
      else if (byte === 0x00) flag('an encoded NUL');
      else if (byte === 0x25 && HEX.test(target.slice(i + 1, i + 3))) flag('double percent-encoding');
      else if (byte === 0xc0 || byte === 0xc1) flag('an overlong UTF-8 sequence');
      decoded += `%${hex.toUpperCase()}`;
      continue;
    }
    if (ch === '\\') flag('a backslash');
    else if (code <= 0x20 || code >= 0x7f) flag('a raw control, space or non-ASCII character');
    decoded += ch;
  }

  // Decoding never produces "/" (an encoded slash stays %2F), so splitting here is exact.
  const segments = decoded.split('/').slice(1);
  let sawEmpty = false;
  let sawDotDot = false;
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..') {
        sawDotDot = true;
        out.pop();
      }
      if (last) out.push('');
      continue;
    }
    if (seg === '' && !last) sawEmpty = true;
    const bare = seg.split(';', 1)[0];
    // Servlet containers strip ";params" before resolving: "..;x" is ".." to them.
    if (bare === '.' || bare === '..') flag('a dot-segment with parameters');
    out.push(seg);
  }
  // Servers that collapse "//" before resolving ".." land elsewhere than RFC 3986 does.
  if (sawEmpty && sawDotDot) flag('an empty segment combined with ".."');
  const path = target.startsWith('/') ? `/${out.join('/')}` : target;
  return unsafe === undefined ? { path } : { path, unsafe };
}

/**
 * The common case, in one pass: absolute, printable ASCII, no escapes, no
 * backslash, and no segment starting with "." (so no dot-segments). Such a
 * path is already normal and safe.
 */
function isPlainPath(t: string): boolean {
  if (t.charCodeAt(0) !== 0x2f) return false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x25 || c === 0x5c) return false;
    if (c === 0x2f && t.charCodeAt(i + 1) === 0x2e) return false;
  }
  return true;
}

/**
 * Does `path` lie inside `prefix`, at a segment boundary? `/repos/acme/`
 * matches `/repos/acme/x`; `/repos/acme` matches `/repos/acme` and
 * `/repos/acme/x` but not `/repos/acme-evil`. An unsafe path never matches.
 */
export function matchesPathPrefix(path: NormalisedPath, prefix: string): boolean {
  if (path.unsafe !== undefined) return false;
  const p = path.path;
  if (prefix.endsWith('/')) return p.startsWith(prefix);
  return p === prefix || p.startsWith(`${prefix}/`);
}

/** Validates and normalises a `narrow.pathPrefix` as written in a bundle. */
export function parsePathPrefix(text: string): Result<string> {
  if (!text.startsWith('/')) return { ok: false, error: 'a pathPrefix must start with "/"' };
  if (text.includes('?') || text.includes('#')) return { ok: false, error: 'a pathPrefix must not contain a query or fragment' };
  const n = normalisePath(text);
  if (n.unsafe) return { ok: false, error: `a pathPrefix must not contain ${n.unsafe}` };
  const decodedSegments = text.split('/').map((s) => s.replace(/%2e/gi, '.'));
  if (decodedSegments.some((s) => s === '.' || s === '..')) {
    return { ok: false, error: 'a pathPrefix must not contain "." or ".." segments' };
  }
  return { ok: true, value: n.path };
}
