/**
 * CIDR blocks and a lookup table over many of them. The table groups blocks by
 * prefix length, so a lookup costs one map probe per distinct length (at most
 * 33 or 129), whatever the number of blocks: big policies stay cheap.
 */
import { bitsOf, formatIp, parseIPv4Strict, parseIPv6, unmapIPv4, type IpAddress } from './ip.js';

export interface Cidr {
  readonly family: 4 | 6;
  /** The network address (host bits zero). */
  readonly base: bigint;
  readonly prefix: number;
}

export function maskOf(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

export type CidrResult = { ok: true; cidr: Cidr } | { ok: false; error: string };

/**
 * `a.b.c.d/n` or `x:y::/n`. Strict text only (dotted decimal, plain IPv6):
 * admins write these, and `010.0.0.0/8` must not silently mean 8.0.0.0/8.
 * Host bits must be zero, so a typo such as `10.0.0.1/8` is caught, not widened.
 * An IPv6 block inside `::ffff:0:0/96` becomes the IPv4 block it maps.
 */
export function parseCidr(text: string): CidrResult {
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, error: 'expected ADDRESS/PREFIX' };
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const ip = addrText.includes(':') ? parseIPv6(addrText) : parseIPv4Strict(addrText);
  if (!ip) return { ok: false, error: `"${addrText}" is not an IPv4 (dotted decimal) or IPv6 address` };
  const bits = bitsOf(ip.family);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return { ok: false, error: `prefix length must be 0-${bits}` };
  }
  const prefix = Number(prefixText);
  const base = ip.value & maskOf(ip.family, prefix);
  if (base !== ip.value) {
    const fixed = formatCidr({ family: ip.family, base, prefix });
    return { ok: false, error: `host bits are set; did you mean ${fixed}?` };
  }
  if (ip.family === 6 && prefix >= 96 && base >> 32n === 0xffffn) {
    return { ok: true, cidr: { family: 4, base: base & 0xffffffffn, prefix: prefix - 96 } };
  }
  return { ok: true, cidr: { family: ip.family, base, prefix } };
}

/** Parses a block known to be valid (the built-in tables). */
export function cidr(text: string): Cidr {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(`bad built-in CIDR ${text}: ${r.error}`);
  return r.cidr;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  return c.family === ip.family && (ip.value & maskOf(c.family, c.prefix)) === c.base;
}

/** True when every address of `inner` is in `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && (inner.base & maskOf(outer.family, outer.prefix)) === outer.base;
}

export function hostCidr(ip: IpAddress): Cidr {
  return { family: ip.family, base: ip.value, prefix: bitsOf(ip.family) };
}

/** Maps CIDR blocks to values; `lookup` answers from the longest matching prefix down. */
export class CidrTable<T> {
  // family -> prefix length -> network -> values; lengths kept sorted, longest first.
  private readonly byFamily = new Map<4 | 6, { lengths: number[]; byLength: Map<number, Map<bigint, T[]>> }>();

  add(c: Cidr, value: T): void {
    let fam = this.byFamily.get(c.family);
    if (!fam) {
      fam = { lengths: [], byLength: new Map() };
      this.byFamily.set(c.family, fam);
    }
    let nets = fam.byLength.get(c.prefix);
    if (!nets) {
      nets = new Map();
      fam.byLength.set(c.prefix, nets);
      fam.lengths.push(c.prefix);
      fam.lengths.sort((a, b) => b - a);
    }
    const list = nets.get(c.base);
    if (list) list.push(value);
    else nets.set(c.base, [value]);
  }

  /** Visits the blocks containing `ip`, longest prefix first, until `pick` returns something. */
  find<R>(ip: IpAddress, pick: (hit: { cidr: Cidr; values: readonly T[] }) => R | undefined): R | undefined {
    const fam = this.byFamily.get(ip.family);
    if (!fam) return undefined;
    for (const prefix of fam.lengths) {
      const base = ip.value & maskOf(ip.family, prefix);
      const values = fam.byLength.get(prefix)!.get(base);
      if (values) {
        const r = pick({ cidr: { family: ip.family, base, prefix }, values });
        if (r !== undefined) return r;
      }
    }
    return undefined;
  }

  get size(): number {
    let n = 0;
    for (const fam of this.byFamily.values()) for (const nets of fam.byLength.values()) n += nets.size;
    return n;
  }
}

/**
 * The IP and CIDR entries of a policy, as the SSRF guard needs them: "is this
 * address listed, and was it listed exactly (a single address) or by a block?"
 */
export interface CompiledCidrs {
  /** The most specific entry containing `ip`, or undefined. */
  match(ip: IpAddress): { entry: string; exact: boolean } | undefined;
  readonly size: number;
}

export function compileCidrs(blocks: Iterable<Cidr>): CompiledCidrs {
  const table = new CidrTable<string>();
  for (const c of blocks) {
    const bits = bitsOf(c.family);
    table.add(c, c.prefix === bits ? formatIp({ family: c.family, value: c.base }) : formatCidr(c));
  }
  return {
    match(address) {
      const ip = unmapIPv4(address);
      return table.find(ip, (hit) => ({ entry: hit.values[0]!, exact: hit.cidr.prefix === bitsOf(ip.family) }));
    },
    get size() {
      return table.size;
    },
  };
}

/** Parses strings (IPs or CIDRs) into a CompiledCidrs; throws on a bad entry. */
export function compileCidrTexts(entries: Iterable<string>): CompiledCidrs {
  const blocks: Cidr[] = [];
  for (const text of entries) {
    if (text.includes('/')) blocks.push(cidr(text));
    else {
      const ip = text.includes(':') ? parseIPv6(text) : parseIPv4Strict(text);
      if (!ip) throw new Error(`not an IP address: ${text}`);
      blocks.push(hostCidr(unmapIPv4(ip)));
    }
  }
  return compileCidrs(blocks);
}
