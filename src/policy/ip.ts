/**
 * IP literals: parse every encoding a client library or resolver might accept,
 * and print one canonical form, so that a rule and the address that gets dialled
 * are compared as the same value. Addresses are bigints (32 or 128 bits): exact,
 * and the same code serves both families.
 */

export interface IpAddress {
  readonly family: 4 | 6;
  /** The address as an unsigned integer: 32 bits for IPv4, 128 for IPv6. */
  readonly value: bigint;
}

export const IPV4_BITS = 32;
export const IPV6_BITS = 128;

export function bitsOf(family: 4 | 6): number {
  return family === 4 ? IPV4_BITS : IPV6_BITS;
}

/**
 * IPv4 as inet_aton(3) and the WHATWG URL parser read it: one to four parts,
 * each decimal, octal (leading 0) or hex (0x); the last part fills the
 * remaining bytes (`127.1` = 127.0.0.1, `2130706433` = 127.0.0.1).
 */
export function parseIPv4Loose(text: string): IpAddress | undefined {
  const parts = text.split('.');
  if (parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseInetAtonPart(part);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  for (const n of numbers) if (n > 255) return undefined;
  const lastBytes = 4 - numbers.length;
  if (last >= 256 ** lastBytes) return undefined;
  let value = 0n;
  for (const n of numbers) value = (value << 8n) | BigInt(n);
  value = (value << BigInt(8 * lastBytes)) | BigInt(last);
  return { family: 4, value };
}

function parseInetAtonPart(part: string): number | undefined {
  if (part === '') return undefined;
  let digits = part;
  let radix = 10;
  if (/^0[xX]/.test(part)) {
    digits = part.slice(2);
    radix = 16;
    if (digits === '') return 0; // `0x` alone is 0 for inet_aton and WHATWG
    if (!/^[0-9a-fA-F]+$/.test(digits)) return undefined;
  } else if (part.length > 1 && part.startsWith('0')) {
    digits = part.slice(1);
    radix = 8;
    if (!/^[0-7]+$/.test(digits)) return undefined;
  } else if (!/^[0-9]+$/.test(digits)) {
    return undefined;
  }
  // Long digit strings are out of range anyway; avoid precision games.
  if (digits.length > 32) return undefined;
  const n = parseInt(digits, radix);
  return n <= 0xffffffff ? n : undefined;
}

/** Dotted decimal only, no leading zeros: the form admins write in bundle files. */
export function parseIPv4Strict(text: string): IpAddress | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return { family: 4, value };
}

/**
 * IPv6 text (RFC 4291 section 2.2), without brackets or zone id: hex groups,
 * one `::`, an optional dotted-quad tail.
 */
export function parseIPv6(text: string): IpAddress | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string, allowV4Tail: boolean): bigint[] | undefined => {
    if (s === '') return [];
    const groups = s.split(':');
    const out: bigint[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4Strict(g);
        if (!v4) return undefined;
        out.push(v4.value >> 16n, v4.value & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(BigInt(parseInt(g, 16)));
      } else {
        return undefined;
      }
    }
    return out;
  };
  let groups: bigint[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    if (!head || !tail) return undefined;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined; // `::` stands for at least one group
    groups = [...head, ...new Array<bigint>(missing).fill(0n), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | g;
  return { family: 6, value };
}

/**
 * Any IP literal a client might send as a host: bracketed or bare IPv6, every
 * inet_aton form of IPv4. Zone ids are refused (they name a local interface,
 * which is never a valid upstream). IPv4-mapped IPv6 becomes the IPv4 address,
 * since a socket to `::ffff:a.b.c.d` reaches exactly `a.b.c.d`.
 */
export function parseIpLiteral(text: string): IpAddress | undefined {
  let t = text;
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  else if (t.startsWith('[') || t.endsWith(']')) return undefined;
  if (t.includes('%')) return undefined; // zone id, or percent games
  const ip = t.includes(':') ? parseIPv6(t) : parseIPv4Loose(t);
  return ip && unmapIPv4(ip);
}

/** `::ffff:a.b.c.d` -> `a.b.c.d`; anything else unchanged. */
export function unmapIPv4(ip: IpAddress): IpAddress {
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return { family: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** Canonical text: dotted decimal, or RFC 5952 (lower case, longest zero run compressed). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return formatIPv4(ip.value);
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(16 * i)) & 0xffffn));
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn)).join('.');
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}
