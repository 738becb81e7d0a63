import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrContains, cidrCovers, compileCidrTexts, CidrTable, formatCidr, parseCidr } from '../../src/policy/cidr.js';
import { parseIpLiteral } from '../../src/policy/ip.js';

const ip = (s: string) => parseIpLiteral(s)!;
const c = (s: string) => {
  const r = parseCidr(s);
  if (!r.ok) throw new Error(r.error);
  return r.cidr;
};

describe('CIDR parsing', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.1.2.3/32', '10.1.2.3/32'],
    ['::/0', '::/0'],
    ['fd00::/8', 'fd00::/8'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'], // mapped block becomes its IPv4 block
  ])('%s -> %s', (input, expected) => {
    expect(formatCidr(c(input))).toBe(expected);
  });

  it.each([
    ['10.0.0.1/8', 'did you mean 10.0.0.0/8'],
    ['10.0.0.0/33', 'prefix length must be 0-32'],
    ['::/129', 'prefix length must be 0-128'],
    ['10.0.0.0/', 'prefix length'],
    ['10.0.0.0/08', 'prefix length'],
    ['010.0.0.0/8', 'not an IPv4'],
    ['10.0/16', 'not an IPv4'],
    ['10.0.0.0', 'expected ADDRESS/PREFIX'],
    ['fe80::1%eth0/64', 'not an IPv4'],
  ])('rejects %s (%s)', (input, message) => {
    const r = parseCidr(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it('membership at the edges of a block', () => {
    const block = c('100.64.0.0/10');
    expect(cidrContains(block, ip('100.64.0.0'))).toBe(true);
    expect(cidrContains(block, ip('100.127.255.255'))).toBe(true);
    expect(cidrContains(block, ip('100.63.255.255'))).toBe(false);
    expect(cidrContains(block, ip('100.128.0.0'))).toBe(false);
    expect(cidrContains(c('0.0.0.0/0'), ip('255.255.255.255'))).toBe(true);
    expect(cidrContains(c('0.0.0.0/0'), ip('::2'))).toBe(false); // families never mix
    expect(cidrContains(c('fe80::/10'), ip('febf:ffff::1'))).toBe(true);
    expect(cidrContains(c('fe80::/10'), ip('fec0::'))).toBe(false);
  });

  it('coverage', () => {
    expect(cidrCovers(c('10.0.0.0/8'), c('10.1.0.0/16'))).toBe(true);
    expect(cidrCovers(c('10.1.0.0/16'), c('10.0.0.0/8'))).toBe(false);
    expect(cidrCovers(c('10.0.0.0/8'), c('11.0.0.0/16'))).toBe(false);
  });

  it('property: a block contains exactly the addresses sharing its first prefix bits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (a, b, prefix) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const base = (a & mask) >>> 0;
        const block = { family: 4 as const, base: BigInt(base), prefix };
        const inside = ((b & mask) >>> 0) === base;
        expect(cidrContains(block, { family: 4, value: BigInt(b) })).toBe(inside);
      }),
    );
  });
});

describe('CidrTable and CompiledCidrs', () => {
  it('answers longest prefix first', () => {
    const t = new CidrTable<string>();
    t.add(c('10.0.0.0/8'), 'eight');
    t.add(c('10.1.0.0/16'), 'sixteen');
    t.add(c('10.1.2.3/32'), 'host');
    const all = (address: string) => {
      const seen: string[] = [];
      t.find(ip(address), (hit) => void seen.push(hit.values[0]!));
      return seen;
    };
    expect(all('10.1.2.3')).toEqual(['host', 'sixteen', 'eight']);
    expect(all('10.2.0.0')).toEqual(['eight']);
    expect(all('11.0.0.0')).toEqual([]);
    expect(t.find(ip('10.1.2.3'), (hit) => (hit.cidr.prefix < 32 ? hit.values[0] : undefined))).toBe('sixteen');
  });

  it('knows exact entries from blocks, and unmaps IPv4-mapped input', () => {
    const set = compileCidrTexts(['10.0.0.5', '192.168.0.0/16', 'fd00::/8', '::ffff:172.16.0.1']);
    expect(set.match(ip('10.0.0.5'))).toEqual({ entry: '10.0.0.5', exact: true });
    expect(set.match(ip('192.168.1.1'))).toEqual({ entry: '192.168.0.0/16', exact: false });
    expect(set.match(ip('::ffff:192.168.1.1'))).toEqual({ entry: '192.168.0.0/16', exact: false });
    expect(set.match({ family: 6, value: (0xffffn << 32n) | 0xc0a80101n })).toEqual({ entry: '192.168.0.0/16', exact: false });
    expect(set.match(ip('172.16.0.1'))).toEqual({ entry: '172.16.0.1', exact: true });
    expect(set.match(ip('fd12::1'))?.entry).toBe('fd00::/8');
    expect(set.match(ip('10.0.0.6'))).toBeUndefined();
  });
});
