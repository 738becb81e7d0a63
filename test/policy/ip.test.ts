import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIp, parseIPv4Loose, parseIPv4Strict, parseIPv6, parseIpLiteral } from '../../src/policy/ip.js';

const lit = (s: string) => {
  const ip = parseIpLiteral(s);
  return ip && formatIp(ip);
};

describe('IPv4 literals in every inet_aton form', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F000001', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0177.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['0x7f.0x0.0x0.0x1', '127.0.0.1'],
    ['0x7f.0.0.01', '127.0.0.1'],
    ['169.254.43518', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['10.0x10.0.1', '10.16.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['4294967295', '255.255.255.255'],
    ['00000000000000000000000001', '0.0.0.1'],
  ])('%s -> %s', (input, expected) => {
    expect(lit(input)).toBe(expected);
  });

  it.each(['4294967296', '256.0.0.1', '1.2.3.4.5', '1.256.0.0.1', '08.0.0.1', '0x1g', '1..2', '1.2.3.', '.1.2.3', '1.16777216', '1.2.65536', '', '-1', '+1', '1e3', ' 1.2.3.4'])(
    'rejects %j',
    (input) => {
      expect(parseIPv4Loose(input)).toBeUndefined();
    },
  );

  it('strict form is dotted decimal without leading zeros', () => {
    expect(parseIPv4Strict('10.0.0.1')).toBeDefined();
    for (const s of ['010.0.0.1', '10.0.1', '0x0a.0.0.1', '10.0.0.256', '10.0.0.01']) expect(parseIPv4Strict(s)).toBeUndefined();
  });

  it('property: every 32-bit value round-trips through decimal, hex and dotted forms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const dotted = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
        expect(lit(String(n))).toBe(dotted);
        expect(lit(`0x${n.toString(16)}`)).toBe(dotted);
        expect(lit(`0${n.toString(8)}`)).toBe(dotted);
        expect(lit(dotted)).toBe(dotted);
        const [a, b] = [(n >>> 24) & 0xff, n & 0xffffff];
        expect(lit(`${a}.${b}`)).toBe(dotted);
      }),
    );
  });
});

describe('IPv6 literals', () => {
  it.each([
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['::', '::'],
    ['[::]', '::'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1:2', 'fe80::1:2'],
    ['::127.0.0.1', '::7f00:1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
    // IPv4-mapped collapses to the IPv4 address it reaches.
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'],
    ['::FFFF:A9FE:A9FE', '169.254.169.254'],
  ])('%s -> %s', (input, expected) => {
    expect(lit(input)).toBe(expected);
  });

  it.each(['fe80::1%eth0', '[fe80::1%25eth0]', '[fe80::1%eth0]', '1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '::1.2.3', '::01.2.3.4', '[::1', '::1]', '1:2:3:4:5:6:7::8', '::ffff:0x7f.1'])(
    'rejects %j',
    (input) => {
      expect(parseIpLiteral(input)).toBeUndefined();
    },
  );

  it('property: format(parse(x)) is a fixed point for any 128-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (value) => {
        const text = formatIp({ family: 6, value });
        const back = parseIPv6(text);
        expect(back?.value).toBe(value);
        expect(formatIp(back!)).toBe(text);
      }),
    );
  });
});
