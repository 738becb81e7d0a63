import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FRAME, FrameReader, MAX_FRAME, type FrameKind } from '../../src/server/exec-protocol.js';

const kinds = Object.values(FRAME) as FrameKind[];
const frameArb = fc.record({ kind: fc.constantFrom(...kinds), payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) });

/** The frame codec of `tagbox exec`'s hand-off: whatever the cuts, the same frames come out; what is malformed is an error. */
describe('exec hand-off frames', () => {
  it('reads back what was encoded, cut at every place', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.kind, f.payload)));
        const points = [...new Set(cuts.map((c) => (bytes.length ? c % (bytes.length + 1) : 0)))].sort((a, b) => a - b);
        const reader = new FrameReader();
        const out = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          out.push(...reader.push(bytes.subarray(at, p)));
          at = p;
        }
        expect(out.map((f) => ({ kind: f.kind, payload: Buffer.from(f.payload) }))).toEqual(frames);
        expect(reader.buffered).toBe(0);
      }),
    );
  });

  it('a single frame split at every byte yields it exactly once', () => {
    const frame = encodeFrame(FRAME.STDOUT, 'hello, frames');
    for (let cut = 0; cut <= frame.length; cut++) {
      const reader = new FrameReader();
      const first = reader.push(frame.subarray(0, cut));
      const second = reader.push(frame.subarray(cut));
      expect([...first, ...second].map((f) => f.payload.toString())).toEqual(['hello, frames']);
    }
  });

  it('refuses an unknown kind and an oversized length, before the payload arrives', () => {
    expect(() => new FrameReader().push(Buffer.from([0x00, 0, 0, 0, 0]))).toThrow(/unknown frame kind/);
    const header = Buffer.alloc(5);
    header[0] = FRAME.REQUEST;
    header.writeUInt32BE(MAX_FRAME + 1, 1);
    expect(() => new FrameReader().push(header)).toThrow(/over the limit/);
    header.writeUInt32BE(MAX_FRAME, 1);
    expect(new FrameReader().push(header)).toEqual([]);
  });

  it('encodes strings as UTF-8 with the length in bytes', () => {
    const frame = encodeFrame(FRAME.SIGNAL, 'é');
    expect([...frame]).toEqual([FRAME.SIGNAL, 0, 0, 0, 2, 0xc3, 0xa9]);
  });
});
