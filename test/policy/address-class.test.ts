import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyAddress } from '../../src/policy/address-class.js';
import { compileCidrTexts } from '../../src/policy/cidr.js';
import { formatIp, formatIPv4, parseIpLiteral } from '../../src/policy/ip.js';
import { isForbiddenAddress } from '../../src/policy/ssrf.js';

const cls = (s: string) => classifyAddress(parseIpLiteral(s)!);
const none = compileCidrTexts([]);

describe('address classes', () => {
  it.each([
    // IPv4
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.0', 'public'],
    ['169.254.1.1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['192.0.0.192', 'metadata'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['198.18.0.1', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['fd00:ec2::254', 'metadata'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'], // outside 2000::/3
    ['2606:4700:4700::1111', 'public'],
    // IPv4-mapped and IPv4-compatible
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::127.0.0.1', 'loopback'],
    ['::10.0.0.1', 'private'],
    ['::8.8.8.8', 'reserved'],
    ['::ffff:0:a00:1', 'private'], // SIIT
    // NAT64 well-known and local-use
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b::808:808', 'public'],
    ['64:ff9b:1::a00:1', 'private'], // /96 position
    ['64:ff9b:1:0:a:0:100:0', 'private'], // /64 layout: IPv4 in bits 72-103
    ['64:ff9b:1::808:808', 'reserved'], // public at /96, but 0.0.0.8 at /64: local-use NAT64 fails closed
    // 6to4
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'metadata'],
    ['2002:c0a8:101::1', 'private'],
    ['2002:808:808::1', 'public'],
    // Teredo: client = last 32 bits XOR 0xffffffff
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // ~0x80fffffe = 127.0.0.1
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'], // 10.0.0.1
    ['2001:0:4136:e378:8000:63bf:56ff:fe01', 'public'], // 169.0.1.254
    ['2001:0:a00:1::f7f7:f7f7', 'private'], // server 10.0.0.1
  ])('%s is %s', (address, expected) => {
    expect(cls(address).class).toBe(expected);
  });

  it('names the embedded address and mechanism', () => {
    expect(cls('2002:a9fe:a9fe::1').embedded).toEqual({ address: '169.254.169.254', via: '6to4 (2002::/16)' });
    expect(cls('2001:0:4136:e378:8000:63bf:80ff:fffe').embedded?.address).toBe('127.0.0.1');
  });
});

describe('isForbiddenAddress', () => {
  const opts = { allowed: none, selfAddresses: [] as string[] };

  it('refuses every non-public class, in every encoding', () => {
    for (const a of ['127.0.0.1', '2130706433', '0x7f.1', '0177.0.0.1', '127.1', '[::1]', '::ffff:127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::', '10.1.1.1', '169.254.169.254', '0xa9fea9fe', '100.64.1.1', '224.0.0.1', '0.0.0.0', '::', 'fe80::1']) {
      expect(isForbiddenAddress(a, opts), a).not.toBeNull();
    }
    expect(isForbiddenAddress('8.8.8.8', opts)).toBeNull();
    expect(isForbiddenAddress('2606:4700:4700::1111', opts)).toBeNull();
  });

  it('refuses text that is not an IP, and zone ids', () => {
    expect(isForbiddenAddress('localhost', opts)).toMatch(/not an IP address/);
    expect(isForbiddenAddress('fe80::1%eth0', opts)).toMatch(/not an IP address/);
  });

  it('a listed IP or CIDR unlocks private ranges', () => {
    const allowed = compileCidrTexts(['10.0.0.5', '192.168.0.0/16', '127.0.0.1']);
    expect(isForbiddenAddress('10.0.0.5', { allowed, selfAddresses: [] })).toBeNull();
    expect(isForbiddenAddress('10.0.0.6', { allowed, selfAddresses: [] })).toMatch(/10\.0\.0\.6 is private \(10\.0\.0\.0\/8\)/);
    expect(isForbiddenAddress('192.168.7.7', { allowed, selfAddresses: [] })).toBeNull();
    expect(isForbiddenAddress('127.0.0.1', { allowed, selfAddresses: [] })).toBeNull();
    expect(isForbiddenAddress('::ffff:127.0.0.1', { allowed, selfAddresses: [] })).toBeNull();
  });

  it('metadata needs an exact entry; a covering block is not enough', () => {
    const block = compileCidrTexts(['169.254.0.0/16']);
    expect(isForbiddenAddress('169.254.169.254', { allowed: block, selfAddresses: [] })).toMatch(/cloud metadata/);
    expect(isForbiddenAddress('169.254.1.1', { allowed: block, selfAddresses: [] })).toBeNull();
    const exact = compileCidrTexts(['169.254.169.254']);
    expect(isForbiddenAddress('169.254.169.254', { allowed: exact, selfAddresses: [] })).toBeNull();
  });

  it('the unspecified address is never dialled', () => {
    expect(isForbiddenAddress('0.0.0.0', { allowed: compileCidrTexts(['0.0.0.0']), selfAddresses: [] })).toMatch(/unspecified/);
    expect(isForbiddenAddress('::', { allowed: compileCidrTexts(['::/0']), selfAddresses: [] })).toMatch(/unspecified/);
  });

  it("refuses the proxy's own addresses, even public ones, unless listed exactly", () => {
    const self = ['203.0.113.9', '2606:4700::1', '8.8.4.4'];
    expect(isForbiddenAddress('8.8.4.4', { allowed: none, selfAddresses: self })).toMatch(/proxy's own address/);
    expect(isForbiddenAddress('2606:4700:0::1', { allowed: none, selfAddresses: self })).toMatch(/proxy's own address/);
    expect(isForbiddenAddress('8.8.4.4', { allowed: compileCidrTexts(['8.8.0.0/16']), selfAddresses: self })).toMatch(/own address/);
    expect(isForbiddenAddress('8.8.4.4', { allowed: compileCidrTexts(['8.8.4.4']), selfAddresses: self })).toBeNull();
  });

  it('judges embedded forms by the embedded IPv4, but an entry must name the dialled address', () => {
    const allowed = compileCidrTexts(['10.0.0.0/8']);
    expect(isForbiddenAddress('64:ff9b::a00:1', { allowed, selfAddresses: [] })).toMatch(/embeds 10\.0\.0\.1 via NAT64/);
    expect(isForbiddenAddress('64:ff9b::a00:1', { allowed: compileCidrTexts(['64:ff9b::a00:0/120']), selfAddresses: [] })).toBeNull();
  });
});

/**
 * Loopback reaches every service bound to all interfaces of the proxy's host,
 * so like metadata it is unlocked only by an entry naming the exact address:
 * an admin's 127.0.0.0/8 (or ::/0, or a NAT64 block) must not open 127.0.0.2.
 */
describe('isForbiddenAddress: loopback needs an exact entry', () => {
  const covering = ['127.0.0.0/8', '127.0.0.0/16', '127.0.0.0/31', '0.0.0.0/0', '::/0', '::ffff:0:0/96', '64:ff9b::/96', '2002::/16', '2001::/32', '::/96', '::/127'];
  const loopbackForms = [
    '127.0.0.1',
    '127.0.0.2',
    '127.255.255.254',
    '127.1',
    '2130706434',
    '::1',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.2',
    '::ffff:7f00:2',
    '::127.0.0.2',
    '::ffff:0:7f00:2',
    '64:ff9b::7f00:2',
    '64:ff9b:1::7f00:2',
    '2002:7f00:2::1',
    '2001:0:4136:e378:8000:63bf:80ff:fffd',
  ];

  it.each(loopbackForms)('%s is refused under every covering block, with a reason that says so', (address) => {
    const ip = parseIpLiteral(address)!;
    expect(classifyAddress(ip).class).toBe('loopback');
    for (const block of covering) {
      const why = isForbiddenAddress(address, { allowed: compileCidrTexts([block]), selfAddresses: [] });
      expect(why, `${address} under ${block}`).toMatch(/loopback.*only an exact IP entry allows it/);
    }
    // All the blocks together do not either.
    expect(isForbiddenAddress(address, { allowed: compileCidrTexts(covering), selfAddresses: [] })).not.toBeNull();
  });

  it.each(loopbackForms)('%s is allowed by an entry naming exactly the dialled address', (address) => {
    const exact = formatIp(parseIpLiteral(address)!);
    expect(isForbiddenAddress(address, { allowed: compileCidrTexts([exact]), selfAddresses: [] })).toBeNull();
    // The same address as a /32 or /128 block is exact too.
    const bits = parseIpLiteral(exact)!.family === 4 ? 32 : 128;
    expect(isForbiddenAddress(address, { allowed: compileCidrTexts([`${exact}/${bits}`]), selfAddresses: [] })).toBeNull();
  });

  it('an exact entry opens that address only, not its neighbours', () => {
    const allowed = compileCidrTexts(['127.0.0.0/8', '127.0.0.1']);
    expect(isForbiddenAddress('127.0.0.1', { allowed, selfAddresses: [] })).toBeNull();
    expect(isForbiddenAddress('127.0.0.2', { allowed, selfAddresses: [] })).toMatch(/loopback/);
    // An embedded form is judged by the address dialled: listing 127.0.0.1 does not open its NAT64 form.
    expect(isForbiddenAddress('64:ff9b::7f00:1', { allowed, selfAddresses: [] })).toMatch(/embeds 127\.0\.0\.1 via NAT64.*loopback/);
  });

  it('property: no CIDR shorter than a single address unlocks any IPv4 loopback address', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0, max: 31 }), (low, prefix) => {
        const value = (0x7f000000 | low) >>> 0;
        const address = formatIPv4(BigInt(value));
        const base = prefix === 0 ? 0 : ((value >>> (32 - prefix)) << (32 - prefix)) >>> 0;
        const block = `${formatIPv4(BigInt(base))}/${prefix}`;
        expect(isForbiddenAddress(address, { allowed: compileCidrTexts([block]), selfAddresses: [] })).toMatch(/loopback/);
        expect(isForbiddenAddress(`::ffff:${address}`, { allowed: compileCidrTexts([block]), selfAddresses: [] })).toMatch(/loopback/);
        expect(isForbiddenAddress(address, { allowed: compileCidrTexts([address]), selfAddresses: [] })).toBeNull();
      }),
    );
  });

  it('property: NAT64, 6to4 and IPv4-compatible forms of loopback are refused under any covering IPv6 block', () => {
    const forms: Array<[string, (v4: bigint) => bigint]> = [
      ['64:ff9b::/96', (v4) => (0x64ff9bn << 96n) | v4],
      ['2002::/16', (v4) => (0x2002n << 112n) | (v4 << 80n) | 1n],
      ['::/96', (v4) => v4],
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.constantFrom(...forms), fc.integer({ min: 0, max: 127 }), (low, [, make], prefix) => {
        const v4 = BigInt((0x7f000000 | low) >>> 0);
        const value = make(v4);
        const address = formatIp({ family: 6, value });
        const mask = prefix === 0 ? 0n : (((1n << 128n) - 1n) >> BigInt(128 - prefix)) << BigInt(128 - prefix);
        const block = `${formatIp({ family: 6, value: value & mask })}/${prefix}`;
        const why = isForbiddenAddress(address, { allowed: compileCidrTexts([block]), selfAddresses: [] });
        expect(why, `${address} under ${block}`).toMatch(/loopback/);
      }),
    );
  });

  it('property: other private classes are still unlocked by a covering block', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), (low) => {
        const address = formatIPv4(BigInt((0x0a000000 | low) >>> 0));
        expect(isForbiddenAddress(address, { allowed: compileCidrTexts(['10.0.0.0/8']), selfAddresses: [] })).toBeNull();
      }),
    );
  });
});
