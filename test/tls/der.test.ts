import { describe, expect, it } from 'vitest';
import { ipBytes, lengthOctets, positiveInteger, TAG, time, tlv } from '../../src/tls/der.js';

describe('DER encoding for leaves', () => {
  it('encodes lengths in short form below 128 and minimal long form above, and refuses what a leaf never needs', () => {
    const table: Array<[number, string]> = [
      [0, '00'],
      [1, '01'],
      [127, '7f'],
      [128, '8180'],
      [255, '81ff'],
      [256, '820100'],
      [65_535, '82ffff'],
    ];
    for (const [length, hex] of table) expect(lengthOctets(length).toString('hex'), `length ${length}`).toBe(hex);
    for (const bad of [65_536, -1, 1.5, Number.NaN]) expect(() => lengthOctets(bad), `length ${bad}`).toThrow(RangeError);
  });

  it('wraps values as tag-length-value, concatenating parts, empty included', () => {
    expect(tlv(TAG.SEQUENCE).toString('hex')).toBe('3000');
    expect(tlv(TAG.OCTET_STRING, Buffer.from('ab', 'hex'), Buffer.from('cd', 'hex')).toString('hex')).toBe('0402abcd');
    const long = tlv(TAG.OCTET_STRING, Buffer.alloc(300, 1));
    expect(long.subarray(0, 4).toString('hex')).toBe('0482012c');
    expect(long.length).toBe(304);
  });

  it('encodes positive integers minimally: leading zeros dropped, a zero added before a set top bit', () => {
    const table: Array<[string, string]> = [
      ['01', '020101'],
      ['7f', '02017f'],
      ['80', '02020080'],
      ['0000ff', '020200ff'],
      ['00007f', '02017f'],
      ['0102', '02020102'],
    ];
    for (const [magnitude, hex] of table) expect(positiveInteger(Buffer.from(magnitude, 'hex')).toString('hex'), magnitude).toBe(hex);
    for (const zero of ['', '00', '0000']) expect(() => positiveInteger(Buffer.from(zero, 'hex')), `zero ${zero}`).toThrow(/positive/);
  });

  it('writes UTCTime for 1950-2049 and GeneralizedTime otherwise, in whole seconds', () => {
    const table: Array<[string, number, string]> = [
      ['2026-12-03T13:20:37.999Z', TAG.UTC_TIME, '261203132037Z'],
      ['2049-12-31T23:59:59.000Z', TAG.UTC_TIME, '491231235959Z'],
      ['1950-01-01T00:00:00.000Z', TAG.UTC_TIME, '500101000000Z'],
      ['2050-01-01T00:00:00.000Z', TAG.GENERALIZED_TIME, '20500101000000Z'],
      ['1949-12-31T23:59:59.000Z', TAG.GENERALIZED_TIME, '19491231235959Z'],
    ];
    for (const [iso, tag, text] of table) {
      const der = time(new Date(iso));
      expect(der[0], iso).toBe(tag);
      expect(der[1], iso).toBe(text.length);
      expect(der.subarray(2).toString('ascii'), iso).toBe(text);
    }
  });

  it('turns IP literals into their 4 or 16 bytes, every IPv6 spelling included', () => {
    const table: Array<[string, string]> = [
      ['127.0.0.1', '7f000001'],
      ['0.0.0.0', '00000000'],
      ['255.255.255.255', 'ffffffff'],
      ['::', '0'.repeat(32)],
      ['::1', `${'0'.repeat(30)}01`],
      ['1::', `0001${'0'.repeat(28)}`],
      ['2001:db8::8a2e:370:7334', '20010db80000000000008a2e03707334'],
      ['2001:0db8:0000:0000:0000:8a2e:0370:7334', '20010db80000000000008a2e03707334'],
      ['fe80:1:2:3:4:5:6:7', 'fe800001000200030004000500060007'],
      ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
      ['64:ff9b::10.0.0.1', '0064ff9b0000000000000000' + '0a000001'],
      ['FE80::ABCD', `fe80${'0'.repeat(24)}abcd`],
    ];
    for (const [ip, hex] of table) expect(ipBytes(ip).toString('hex'), ip).toBe(hex);
    for (const bad of ['example.test', '1.2.3', '::g', '']) expect(() => ipBytes(bad), bad).toThrow(/not an IP/);
  });
});
