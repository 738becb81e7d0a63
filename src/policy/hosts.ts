/**
 * Host names and host patterns. Everything is compared in one normal form:
 * lower case, no trailing dot, IDN as punycode, IP literals canonical.
 * A rule and a request are normalised by the same code, so they cannot disagree.
 */
import { domainToASCII } from 'node:url';
import { cidrContains, cidrCovers, parseCidr, type Cidr } from './cidr.js';
import { bitsOf, formatIp, parseIPv4Loose, parseIPv4Strict, parseIPv6, sameIp, unmapIPv4, type IpAddress } from './ip.js';

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };
const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

export interface NormalisedHost {
  /** Canonical text: a lower-case ASCII name, or an IP in canonical form (IPv6 without brackets). */
  readonly host: string;
  /** Set when the host is an IP literal. */
  readonly ip?: IpAddress;
}

const MAX_NAME = 253;
const LABEL = /^[a-z0-9_-]{1,63}$/;
// WHATWG "ends in a number": such a name is an IPv4 literal to a URL parser, or invalid.
const NUMERIC_LABEL = /^([0-9]+|0[xX][0-9a-fA-F]*)$/;
const ASCII_NAME_CHARS = /^[A-Za-z0-9._-]*$/;

/**
 * Normalises a request's host (no port, IPv6 optionally in brackets).
 * Accepts every IPv4 form inet_aton accepts (`2130706433`, `0x7f.1`, `127.1`)
 * and returns it canonical, because that is what a client would dial.
 */
export function normaliseHost(raw: string): Result<NormalisedHost> {
  if (isPlainName(raw)) return { ok: true, value: { host: raw.endsWith('.') ? raw.slice(0, -1) : raw } };
  if (raw.length === 0) return fail('the host is empty');
  if (raw.length > 2 * MAX_NAME) return fail('the host is too long');
  if (raw.startsWith('[') || raw.includes(':')) return normaliseIPv6Host(raw);
  if (raw.includes('%')) return fail('percent-encoding is not allowed in a host');
  let name = raw;
  for (const ch of name) {
    if (ch.charCodeAt(0) < 0x80 && !ASCII_NAME_CHARS.test(ch)) {
      return fail(`invalid character ${JSON.stringify(ch)} in host`);
    }
  }
  if (!/^[\x21-\x7e]*$/.test(name) || name.includes('xn--') || /[A-Z]/.test(name)) {
    // Non-ASCII, punycode or upper case: let UTS #46 (WHATWG URL's IDNA) decide.
    // ASCII names without `xn--` map to their lower-case self, so skip the cost.
    const ascii = domainToASCII(name);
    if (ascii === '') return fail('not a valid (internationalised) domain name');
    name = ascii;
  }
  name = stripTrailingDot(name);
  if (name.length === 0) return fail('the host is empty');
  if (name.length > MAX_NAME) return fail(`the host is longer than ${MAX_NAME} characters`);
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0) return fail('the host has an empty label');
    if (!LABEL.test(label)) return fail(`invalid label ${JSON.stringify(label)} in host`);
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) {
    const ip = parseIPv4Loose(name);
    if (!ip) return fail('the host ends in a number but is not a valid IPv4 address');
    return { ok: true, value: { host: formatIp(ip), ip } };
  }
  return { ok: true, value: { host: name } };
}

/**
 * The common case, checked in one pass: lower-case ASCII labels of 1-63 name
 * characters, no `xn--`, not ending in a number, at most 253 characters.
 * Such a name is already normal; anything else takes the full path.
 */
function isPlainName(raw: string): boolean {
  const end = raw.endsWith('.') ? raw.length - 1 : raw.length;
  if (end === 0 || end > MAX_NAME) return false;
  let labelStart = 0;
  let numeric = true; // is the current label all digits?
  for (let i = 0; i <= end; i++) {
    const c = i === end ? 0x2e : raw.charCodeAt(i);
    if (c === 0x2e) {
      const len = i - labelStart;
      if (len === 0 || len > 63) return false;
      if (len >= 4 && raw.startsWith('xn--', labelStart)) return false;
      if (i === end && (numeric || raw.startsWith('0x', labelStart))) return false;
      labelStart = i + 1;
      numeric = true;
      continue;
    }
    const digit = c >= 0x30 && c <= 0x39;
    if (!digit) numeric = false;
    if (!(digit || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f)) return false;
  }
  return true;
}

function stripTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function normaliseIPv6Host(raw: string): Result<NormalisedHost> {
  let inner = raw;
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) return fail('unbalanced brackets in host');
    inner = raw.slice(1, -1);
  }
  if (inner.includes('%')) return fail('IPv6 zone ids are not allowed');
  const parsed = parseIPv6(inner);
  if (!parsed) return fail(raw.startsWith('[') ? 'not a valid IPv6 address' : 'the host must not contain a port or ":"');
  const ip = unmapIPv4(parsed);
  return { ok: true, value: { host: formatIp(ip), ip } };
}

export type HostPattern =
  | { readonly kind: 'exact'; readonly host: string; readonly text: string }
  | { readonly kind: 'wildcard'; readonly suffix: string; readonly text: string }
  | { readonly kind: 'ip'; readonly ip: IpAddress; readonly host: string; readonly text: string }
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly text: string };

/**
 * Parses a host pattern as written in a bundle: `example.com` (that host only),
 * `*.example.com` (any subdomain, any depth, not example.com), an IP literal or
 * a CIDR. IPv4 must be dotted decimal here: `010.0.0.1` is refused rather than
 * read as octal. Schemes, paths, user-info, ports and `*` alone are refused.
 */
export function parseHostPattern(text: string): Result<HostPattern> {
  if (isPlainName(text)) {
    const host = text.endsWith('.') ? text.slice(0, -1) : text;
    return { ok: true, value: { kind: 'exact', host, text: host } };
  }
  if (text.length === 0) return fail('a host pattern is empty');
  if (/\s/.test(text)) return fail('a host pattern must not contain whitespace');
  if (text === '*') return fail('"*" alone is not allowed: list the hosts, or use "*.example.com" for subdomains');
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text)) return fail('write the host only, without a scheme (example.com, not https://example.com)');
  if (text.includes('@')) return fail('user-info ("user@") is not allowed in a host pattern');
  if (text.includes('/')) {
    if (/^[0-9a-fA-F:.]+\/[0-9]*$/.test(text)) {
      const c = parseCidr(text);
      if (!c.ok) return fail(`invalid CIDR "${text}": ${c.error}`);
      return { ok: true, value: cidrPattern(c.cidr) };
    }
    return fail('paths are not allowed in a host pattern; use narrow.pathPrefix on a connection');
  }
  if (text.startsWith('[') || text.includes(':')) {
    const inner = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
    if (inner.includes('%')) return fail('IPv6 zone ids are not allowed');
    const ip = parseIPv6(inner);
    if (ip) return { ok: true, value: ipPattern(unmapIPv4(ip)) };
    if (/^[^:]+:[0-9]*$/.test(text) || /^\[.*\]:[0-9]*$/.test(text)) {
      return fail('a port does not belong in the host; write {host: example.com, ports: [8443]}');
    }
    return fail(`"${text}" is not a valid host or IPv6 address`);
  }
  if (text.includes('*')) {
    if (!text.startsWith('*.') || text.slice(2).includes('*')) {
      return fail('a wildcard is allowed only as the whole first label, as in "*.example.com"');
    }
    const suffix = normaliseHost(text.slice(2));
    if (!suffix.ok) return fail(`invalid wildcard "${text}": ${suffix.error}`);
    if (suffix.value.ip) return fail(`a wildcard cannot cover an IP address ("${text}")`);
    return { ok: true, value: { kind: 'wildcard', suffix: suffix.value.host, text: `*.${suffix.value.host}` } };
  }
  const labels = text.replace(/\.$/, '').split('.');
  if (NUMERIC_LABEL.test(labels[labels.length - 1] ?? '')) {
    const ip = parseIPv4Strict(text.replace(/\.$/, ''));
    if (!ip) return fail(`"${text}" is not a valid IPv4 address; write IPv4 in dotted decimal, e.g. 10.0.0.1`);
    return { ok: true, value: ipPattern(ip) };
  }
  const host = normaliseHost(text);
  if (!host.ok) return fail(`invalid host "${text}": ${host.error}`);
  return { ok: true, value: { kind: 'exact', host: host.value.host, text: host.value.host } };
}

function ipPattern(ip: IpAddress): HostPattern {
  const host = formatIp(ip);
  return { kind: 'ip', ip, host, text: host };
}

function cidrPattern(c: Cidr): HostPattern {
  // A single-address block is that address: one spelling, one specificity.
  if (c.prefix === bitsOf(c.family)) return ipPattern({ family: c.family, value: c.base });
  return { kind: 'cidr', cidr: c, text: `${formatIp({ family: c.family, value: c.base })}/${c.prefix}` };
}

/** Does the (normalised) host match the pattern? */
export function hostMatches(pattern: HostPattern, host: NormalisedHost): boolean {
  switch (pattern.kind) {
    case 'exact':
      return host.ip === undefined && host.host === pattern.host;
    case 'wildcard':
      return host.ip === undefined && host.host.endsWith(`.${pattern.suffix}`);
    case 'ip':
      return host.ip !== undefined && sameIp(host.ip, pattern.ip);
    case 'cidr':
      return host.ip !== undefined && cidrContains(pattern.cidr, host.ip);
  }
}

/** True when every host `inner` matches is matched by `outer` too. */
export function patternCovers(outer: HostPattern, inner: HostPattern): boolean {
  switch (inner.kind) {
    case 'exact':
      return hostMatches(outer, { host: inner.host });
    case 'ip':
      return hostMatches(outer, { host: inner.host, ip: inner.ip });
    case 'wildcard':
      return outer.kind === 'wildcard' && (inner.suffix === outer.suffix || inner.suffix.endsWith(`.${outer.suffix}`));
    case 'cidr':
      return outer.kind === 'cidr' && cidrCovers(outer.cidr, inner.cidr);
  }
}

/**
 * Ports an entry allows. Without `ports`, 443 and 80. With `ports`, exactly
 * the ports listed: `{host: h, ports: [8443]}` allows 8443 only, so an admin
 * who narrows to one port gets one port. List 443 too when it is wanted.
 */
export const DEFAULT_PORTS: ReadonlySet<number> = new Set([443, 80]);

export function portsOf(ports: readonly number[] | undefined): ReadonlySet<number> {
  return ports === undefined ? DEFAULT_PORTS : new Set(ports);
}

export function portsOverlap(a: ReadonlySet<number>, b: ReadonlySet<number>): boolean {
  for (const p of a) if (b.has(p)) return true;
  return false;
}
