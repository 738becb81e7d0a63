/**
 * git's pkt-line framing (gitprotocol-common): four hex digits of length
 * (counting themselves), then the payload; "0000" is a flush, "0001" a
 * delimiter, "0002" a response end. Pure.
 */
export const MAX_PKT_LENGTH = 65520;
export const FLUSH_PKT = Buffer.from('0000', 'latin1');

export type Packet =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'flush' | 'delim' | 'end'; next: number }
  | { kind: 'data'; payload: Buffer; next: number };

export function readPacket(buf: Buffer, offset: number): Packet {
  if (buf.length - offset < 4) return { kind: 'incomplete' };
  const head = buf.toString('latin1', offset, offset + 4);
  if (!/^[0-9a-fA-F]{4}$/.test(head)) return { kind: 'invalid', reason: 'a pkt-line length is not four hex digits' };
  const length = parseInt(head, 16);
  if (length === 0) return { kind: 'flush', next: offset + 4 };
  if (length === 1) return { kind: 'delim', next: offset + 4 };
  if (length === 2) return { kind: 'end', next: offset + 4 };
  if (length < 4 || length > MAX_PKT_LENGTH) return { kind: 'invalid', reason: `a pkt-line length of ${length} is out of range` };
  if (buf.length - offset < length) return { kind: 'incomplete' };
  return { kind: 'data', payload: buf.subarray(offset + 4, offset + length), next: offset + length };
}

/** One pkt-line holding `payload`. */
export function pkt(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length + 4 > MAX_PKT_LENGTH) throw new Error('pkt-line payload too long');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

/** `data` sent on a side-band channel (1: data, 2: progress, 3: error), split into packets that fit. */
export function sideband(channel: 1 | 2 | 3, data: Buffer): Buffer {
  const parts: Buffer[] = [];
  const room = MAX_PKT_LENGTH - 5;
  for (let i = 0; i < data.length; i += room) parts.push(pkt(Buffer.concat([Buffer.from([channel]), data.subarray(i, i + room)])));
  return Buffer.concat(parts);
}
