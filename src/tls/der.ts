import { isIPv4, isIPv6 } from 'node:net';

/**
 * The few DER (X.690) encodings a leaf certificate needs, and nothing else:
 * the Agent Proxy mints a leaf on the first request to a host, and the
 * general-purpose certificate library spent milliseconds there on what is a
 * handful of tag-length-value writes. Pure: no I/O, no state.
 */
export const TAG = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
  /** [0] EXPLICIT, constructed (the certificate's version). */
  CONTEXT_0: 0xa0,
  /** [3] EXPLICIT, constructed (the certificate's extensions). */
  CONTEXT_3: 0xa3,
  /** GeneralName dNSName [2] IA5String, implicit. */
  DNS_NAME: 0x82,
  /** GeneralName iPAddress [7] OCTET STRING, implicit. */
  IP_ADDRESS: 0x87,
} as const;

/** The length octets: short form below 128, else long form (at most 2 bytes: a leaf is far below 64 KiB). */
export function lengthOctets(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`invalid DER length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  if (length < 0x10000) return Buffer.from([0x82, length >> 8, length & 0xff]);
  throw new RangeError(`DER value of ${length} bytes is too long for a leaf certificate`);
}

/** One tag-length-value; the value is the parts concatenated. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const value = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), lengthOctets(value.length), value]);
}

/**
 * A positive INTEGER from big-endian magnitude bytes, minimally encoded:
 * leading zero bytes dropped, one added back when the top bit is set.
 */
export function positiveInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start += 1;
  const bytes = magnitude.subarray(start);
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) throw new RangeError('a certificate serial must be positive');
  return bytes[0]! & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), bytes) : tlv(TAG.INTEGER, bytes);
}

/** RFC 5280 4.1.2.5: UTCTime for 1950-2049, GeneralizedTime otherwise; whole seconds, Zulu. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  if (year < 0 || year > 9999) throw new RangeError(`year ${year} cannot be encoded in a certificate`);
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${digits}Z`, 'ascii'));
}

/** The 4 or 16 bytes of an IP literal, as a SAN iPAddress carries it. */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${ip}`);
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two 16-bit groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  all.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}
