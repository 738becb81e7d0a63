import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withoutMention } from '../../src/engines/mention.js';
import { blockedNotice, noticeKey } from '../../src/sessions/notices.js';
import { capHead, capTail, neutralise, ProgressLimiter } from '../../src/util/output-limits.js';

/** Invariant 9's pure half: what a sandbox prints is made plain, capped and rate-limited before anyone sees it. */
describe('neutralise', () => {
  it.each([
    ['CSI (clear screen, colours)', '\u001b[2J\u001b[31mred\u001b[0m', 'red'],
    ['OSC 52 (clipboard write), BEL-terminated', 'a\u001b]52;c;SGVsbG8=\u0007b', 'ab'],
    ['OSC 0 (window title), ST-terminated', 'a\u001b]0;pwned\u001b\\b', 'ab'],
    ['a lone ESC sequence', 'a\u001bcb', 'ab'],
    ['C0 and C1 controls, DEL', 'a\u0000\u0008\u007f\u0085\u009bb', 'ab'],
    ['carriage returns (overwriting a line)', 'safe\rEVIL\r\nnext', 'safe\nEVIL\nnext'],
    ['bidi overrides', 'abc\u202edcba', 'abcdcba'],
    ['@channel, @here, @everyone', 'hey @channel and x@here @Everyone', 'hey @\u200bchannel and x@\u200bhere @\u200bEveryone'],
    ["Slack's special mentions", '<!channel> <!here|here> <!subteam^S1>', '<\u200b!channel> <\u200b!here|here> <\u200b!subteam^S1>'],
  ])('removes or defuses %s', (_what, input, output) => {
    expect(neutralise(input)).toBe(output);
  });

  it('keeps newlines, tabs and printable text (any language) as they are', () => {
    expect(neutralise('a\tb\nc — ünïcödé 日本 🙂')).toBe('a\tb\nc — ünïcödé 日本 🙂');
  });

  it('never lets a control character other than \\n and \\t through, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (input) => {
        // eslint-disable-next-line no-control-regex -- the property is about control characters
        expect(neutralise(input)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('capTail and capHead', () => {
  it('leaves text within the cap alone', () => {
    expect(capTail('short', 100)).toEqual({ text: 'short' });
    expect(capHead('short', 100)).toBe('short');
  });

  it('keeps the end of long output, on a line boundary, and says what was cut', () => {
    const text = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n');
    const { text: kept, cut } = capTail(text, 500);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(500);
    expect(kept.endsWith('line 999')).toBe(true);
    expect(kept.startsWith('line ')).toBe(true);
    expect(cut).toMatch(/^\(output cut: the last \d+ B of 8\.7 KiB shown\)$/);
  });

  it('never splits a UTF-8 character, and a capped message stays within its cap', () => {
    fc.assert(
      // U+FFFD in the input would be indistinguishable from a split character in the output.
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }).filter((t) => !t.includes('\ufffd')), fc.integer({ min: 80, max: 400 }), (text, max) => {
        const tail = capTail(text, max).text;
        expect(tail).not.toContain('\ufffd');
        const head = capHead(text, max);
        expect(head).not.toContain('\ufffd');
        expect(Buffer.byteLength(head)).toBeLessThanOrEqual(Math.max(max, Buffer.byteLength(text) <= max ? max : 0));
      }),
      { numRuns: 500 },
    );
  });
});

describe('ProgressLimiter', () => {
  it('lets a second of output through, counts the rest and says so when there is room again', () => {
    let now = 0;
    const limiter = new ProgressLimiter(1000, () => now);
    expect(limiter.push('a'.repeat(600))).toHaveLength(600);
    expect(limiter.push('b'.repeat(600))).toHaveLength(400); // the part that fits
    expect(limiter.push('c'.repeat(600))).toBeUndefined();
    now += 1000;
    const next = limiter.push('d')!;
    expect(next).toBe('(800 B of output not shown: over the progress rate limit)\nd');
    expect(limiter.flush()).toBeUndefined();
  });

  it('posts at most the rate over any run of pushes (a flood cannot flood the thread)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 5000 })), { maxLength: 200 }), (pushes) => {
        let now = 0;
        const limiter = new ProgressLimiter(2000, () => now);
        let posted = 0;
        for (const [dt, size] of pushes) {
          now += dt;
          const out = limiter.push('x'.repeat(size));
          if (out) posted += Buffer.byteLength(out.replace(/^\(.*\)\n/, ''));
        }
        // One second's bucket up front plus the rate over the elapsed time.
        expect(posted).toBeLessThanOrEqual(2000 + (now / 1000) * 2000 + 1);
      }),
    );
  });
});

describe('blocked-host notices', () => {
  it('names the host, the reason and what would allow it, for the place', () => {
    const facts = { host: 'api.example.com', port: 443, reason: 'no bundle allows api.example.com' };
    expect(blockedNotice(facts, { kind: 'channel', channelName: 'eng' })).toBe(
      'Blocked a request to api.example.com: no bundle allows api.example.com. To allow it, ask an admin to add api.example.com to a bundle attached to #eng (or to its workspace or the org).',
    );
    expect(blockedNotice({ ...facts, port: 8443 }, { kind: 'dm' })).toMatch(/^Blocked a request to api\.example\.com:8443: .* add a personal connector for api\.example\.com/);
    expect(blockedNotice({ host: '10.0.0.1', port: 80, reason: 'private address 10.0.0.1' }, { kind: 'dm' })).toMatch(/never reachable from a DM/);
  });

  it('shows what the sandbox sent as data: no control characters, bounded', () => {
    const text = blockedNotice({ host: `evil\u001b[2J${'a'.repeat(1000)}`, port: 443, reason: '@channel \u0007' }, { kind: 'channel', channelName: 'x' });
    // eslint-disable-next-line no-control-regex -- asserting their absence
    expect(text).not.toMatch(/[\u0000-\u001f]/);
    expect(text).toContain('@\u200bchannel');
    expect(text.length).toBeLessThan(1000);
  });

  it('counts one notice per host and port, whatever the case', () => {
    expect(noticeKey({ host: 'A.example', port: 443, reason: '' })).toBe(noticeKey({ host: 'a.example', port: 443, reason: 'other' }));
    expect(noticeKey({ host: 'a.example', port: 443, reason: '' })).not.toBe(noticeKey({ host: 'a.example', port: 80, reason: '' }));
  });
});

describe('withoutMention', () => {
  it.each([
    ['@tagbox uname -a', 'uname -a'],
    ['<@U123ABC> ls', 'ls'],
    ['<@U123ABC|tagbox>: ls', 'ls'],
    ['@tagbox, @tagbox echo hi', 'echo hi'],
    ['echo @tagbox', 'echo @tagbox'],
    ['  ls  ', 'ls'],
  ])('%j -> %j', (input, output) => {
    expect(withoutMention(input)).toBe(output);
  });
});
