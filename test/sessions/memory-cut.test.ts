import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capMemory, MEMORY_CUT_LINE, MEMORY_MAX_BYTES, memoryScope } from '../../src/sessions/channel-memory.js';

/** The cut rule of channel memory: pure, so every case can be tried. */
const NOTE = `${MEMORY_CUT_LINE}\n`;
const NOTE_BYTES = Buffer.byteLength(NOTE);
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const bytesOf = (s: string) => Buffer.byteLength(s, 'utf8');

/** Checks everything the rule promises for one input, and returns the result. */
function checked(raw: Uint8Array, max: number) {
  const result = capMemory(raw, max);
  const text = Buffer.from(raw).toString('utf8').replaceAll('\u0000', '\uFFFD');
  const out = utf8(result.content);
  // At most the cap, valid UTF-8 (it survives a round trip), no NUL.
  expect(out.length).toBeLessThanOrEqual(max);
  expect(out.toString('utf8')).toBe(result.content);
  expect(result.content).not.toContain('\u0000');
  // Cutting again changes nothing.
  expect(capMemory(out, max)).toEqual({ content: result.content, cut: false });
  if (!result.cut) {
    expect(result.content).toBe(text);
    return result;
  }
  expect(raw.byteLength > max || bytesOf(text) > max).toBe(true);
  expect(result.content.endsWith(NOTE)).toBe(true);
  const room = max - NOTE_BYTES - 1;
  const whole = utf8(text);
  const kept = utf8(result.content.slice(0, -NOTE.length));
  if (whole.subarray(0, room).includes(0x0a)) {
    // Cut at a line boundary: a prefix of the text ending in a newline (or nothing), as long as fits.
    expect(whole.subarray(0, kept.length).equals(kept)).toBe(true);
    if (kept.length) expect(kept.at(-1)).toBe(0x0a);
    const next = whole.indexOf(0x0a, kept.length);
    expect(next === -1 || next >= room).toBe(true);
  } else {
    // The first line alone is too long: cut at the last whole character that fits, and ended.
    const part = kept.subarray(0, Math.max(0, kept.length - 1));
    if (kept.length) expect(kept.at(-1)).toBe(0x0a);
    expect(whole.subarray(0, part.length).equals(part)).toBe(true);
    expect(whole.subarray(0, room).includes(0x0a)).toBe(false);
    expect(part.length).toBeLessThanOrEqual(room);
    // The character after the cut did not fit whole.
    const nextChar = [...whole.subarray(part.length).toString('utf8')][0]!;
    expect(part.length + bytesOf(nextChar)).toBeGreaterThan(room);
  }
  return result;
}

describe('capMemory (the cut rule)', () => {
  it('keeps a memory within the cap exactly as it is', () => {
    for (const text of ['', 'a', 'remember: X\n', 'no trailing newline', 'ünïcödé 日本 🙂\n\ttab', 'x'.repeat(MEMORY_MAX_BYTES)]) {
      expect(capMemory(utf8(text))).toEqual({ content: text, cut: false });
    }
  });

  it('cuts one byte over the cap at the last line boundary and says so on the last line', () => {
    const line = `${'y'.repeat(99)}\n`;
    const text = line.repeat(Math.ceil((MEMORY_MAX_BYTES + 1) / 100)).slice(0, MEMORY_MAX_BYTES + 1);
    const result = checked(utf8(text), MEMORY_MAX_BYTES);
    expect(result.cut).toBe(true);
    const lines = result.content.split('\n');
    expect(lines.at(-2)).toBe(MEMORY_CUT_LINE);
    expect(lines.slice(0, -2).every((l) => l === 'y'.repeat(99))).toBe(true);
    expect(bytesOf(result.content)).toBeGreaterThan(MEMORY_MAX_BYTES - 100 - NOTE_BYTES);
  });

  it('cuts a single line longer than the cap at a character boundary', () => {
    const result = checked(utf8('z'.repeat(MEMORY_MAX_BYTES * 2)), MEMORY_MAX_BYTES);
    expect(result.content).toBe(`${'z'.repeat(MEMORY_MAX_BYTES - NOTE_BYTES - 1)}\n${NOTE}`);
  });

  // Every alignment of 1- to 4-byte characters across the cut point, for lines that end just before,
  // at and after it, with and without earlier lines: the cut never splits a character.
  it('never splits a multi-byte character, whatever its alignment at the cut (exhaustive)', () => {
    const max = 120;
    const room = max - NOTE_BYTES - 1;
    let cuts = 0;
    for (const ch of ['a', 'é', '日', '🙂']) {
      for (let pad = 0; pad < 4; pad++) {
        for (const before of ['', 'first\n', 'ü\n'.repeat(5)]) {
          for (let total = room - 8; total <= max + 8; total++) {
            const head = `${before}${'p'.repeat(pad)}`;
            const count = Math.max(0, Math.floor((total - bytesOf(head)) / bytesOf(ch)));
            for (const tail of ['', '\n', '\nmore']) {
              const result = checked(utf8(`${head}${ch.repeat(count)}${tail}`), max);
              if (result.cut) cuts++;
            }
          }
        }
      }
    }
    expect(cuts).toBeGreaterThan(500);
  });

  it('reads broken UTF-8 and NUL as U+FFFD, counting the replacement against the cap', () => {
    expect(capMemory(Uint8Array.from([0x61, 0x00, 0x62]))).toEqual({ content: 'a\uFFFDb', cut: false });
    expect(capMemory(Uint8Array.from([0x61, 0xff, 0xe6, 0x97]))).toEqual({ content: 'a\uFFFD\uFFFD', cut: false });
    // 30 000 lone bytes are 90 000 bytes of U+FFFD: over the cap, so cut.
    const result = checked(new Uint8Array(30_000).fill(0x80), MEMORY_MAX_BYTES);
    expect(result.cut).toBe(true);
    // A read of cap + 1 bytes that ends in the middle of a character: that character is never kept.
    const partial = Buffer.concat([utf8(`${'k'.repeat(MEMORY_MAX_BYTES - 1)}`), utf8('日').subarray(0, 2)]);
    expect(checked(partial, MEMORY_MAX_BYTES).content).not.toContain('\uFFFD');
  });

  it('holds for any bytes and any cap (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.integer({ min: NOTE_BYTES + 1, max: 400 }), (raw, max) => {
        checked(raw, max);
      }),
      { numRuns: 3000 },
    );
  });

  it('holds for any text, many lines and scripts mixed (property)', () => {
    const line = fc.string({ unit: fc.constantFrom('a', 'é', '日', '🙂', ' ', '\t'), maxLength: 60 });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), fc.integer({ min: NOTE_BYTES + 1, max: 500 }), (lines, trailing, max) => {
        const text = lines.join('\n') + (trailing ? '\n' : '');
        const result = checked(utf8(text), max);
        expect(result.cut).toBe(bytesOf(text) > max);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('memoryScope', () => {
  it('is one per channel, and one per member in a DM', () => {
    expect(memoryScope({ kind: 'channel', channelId: 'c1' })).toBe('channel:c1');
    expect(memoryScope({ kind: 'dm', memberId: 'm1' })).toBe('dm:m1');
  });
});
