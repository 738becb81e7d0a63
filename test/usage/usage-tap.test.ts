import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseLineReader, type SseMessage } from '../../src/usage/sse-lines.js';
import { MAX_TOKENS, modelName, tokenCount, usageTap, type TapResult } from '../../src/usage/usage-tap.js';

/**
 * The usage tap, pure: bytes as they pass, counts out. Every split point of
 * the stream gives the same answer; what the upstream says is data (lies are
 * clamped or ignored, never a crash); a cut-off stream records what was seen.
 */
const sse = (events: Array<[string | undefined, unknown]>, eol = '\n'): string =>
  events.map(([event, data]) => `${event === undefined ? '' : `event: ${event}${eol}`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}${eol}${eol}`).join('');

/** A streamed Messages API answer as the API sends it (shape of the 2023-06-01 version). */
function messageStream(options: { model?: string; input?: number; output?: number; cacheRead?: number; cacheCreation?: number; text?: string; eol?: string } = {}): string {
  const { model = 'claude-sonnet-4-5-20250929', input = 1200, output = 57, cacheRead = 300, cacheCreation = 40, text = 'Hello — ünïcödé 日本 🙂', eol = '\n' } = options;
  return sse(
    [
      ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, usage: { input_tokens: input, output_tokens: 1, cache_read_input_tokens: cacheRead, cache_creation_input_tokens: cacheCreation } } }],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['ping', { type: 'ping' }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' "usage": {"output_tokens": 999999}' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: Math.floor(output / 2) } }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: output } }],
      ['message_stop', { type: 'message_stop' }],
    ],
    eol,
  );
}

function run(contentType: string, chunks: Array<Buffer | string>): TapResult {
  const tap = usageTap(contentType)!;
  expect(tap).toBeDefined();
  for (const c of chunks) tap.write(typeof c === 'string' ? Buffer.from(c) : c);
  return tap.end();
}

/** The body cut into pieces at the given byte offsets. */
function cut(body: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => Math.min(body.length, p)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(body.subarray(from, p));
    from = p;
  }
  out.push(body.subarray(from));
  return out;
}

const full = { model: 'claude-sonnet-4-5-20250929', inputTokens: 1200, outputTokens: 57, cacheReadTokens: 300, cacheCreationTokens: 40, seen: true, error: false, complete: true };

describe('the SSE tap', () => {
  it('reads message_start and the last message_delta of a streamed answer, and nothing from content', () => {
    expect(run('text/event-stream', [messageStream()])).toEqual(full);
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('gives the same answer with %s line ends, cut at every byte', (_name, eol) => {
    const body = Buffer.from(messageStream({ eol }));
    for (let i = 0; i <= body.length; i++) expect(run('text/event-stream', [body.subarray(0, i), body.subarray(i)])).toEqual(full);
  });

  it('gives the same answer however the stream is split (any number of cuts, inside characters and line ends)', () => {
    const bodies = ['\n', '\r\n', '\r'].map((eol) => Buffer.from(`: a comment\r\n${messageStream({ eol })}`));
    fc.assert(
      fc.property(fc.constantFrom(...bodies), fc.array(fc.nat({ max: 4000 }), { maxLength: 40 }), (body, at) => {
        expect(run('text/event-stream', cut(body, at))).toEqual(full);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes every count a message_delta carries (cumulative: the last wins), input and cache ones too', () => {
    const body = sse([
      ['message_start', { type: 'message_start', message: { model: 'claude-opus-4-5', usage: { input_tokens: 10, output_tokens: 1 } } }],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 5, input_tokens: 12, cache_read_input_tokens: 7, cache_creation_input_tokens: 3 } }],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: 9 } }],
    ]);
    expect(run('text/event-stream', [body])).toMatchObject({ model: 'claude-opus-4-5', inputTokens: 12, outputTokens: 9, cacheReadTokens: 7, cacheCreationTokens: 3, seen: true });
  });

  it('reads events without an event field by their data type, skips comments and unknown fields, drops a leading BOM', () => {
    const body = `\uFEFF: keep-alive\nid: 1\nretry: 10\nfoo: bar\ndata: ${JSON.stringify({ type: 'message_start', message: { model: 'm-1', usage: { input_tokens: 4 } } })}\n\n:\ndata: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 2 } })}\n\n`;
    expect(run('text/event-stream; charset=utf-8', [body])).toEqual({ model: 'm-1', inputTokens: 4, outputTokens: 2, cacheReadTokens: 0, cacheCreationTokens: 0, seen: true, error: false, complete: true });
  });

  it('joins multi-line data', () => {
    const json = JSON.stringify({ type: 'message_start', message: { model: 'm', usage: { input_tokens: 8 } } }, null, 1);
    const body = `event: message_start\n${json.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
    expect(run('text/event-stream', [body]).inputTokens).toBe(8);
  });

  it('notes an error event and keeps what was counted before it', () => {
    const body = `${sse([['message_start', { type: 'message_start', message: { model: 'm', usage: { input_tokens: 30, output_tokens: 1 } } }]])}${sse([['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]])}`;
    expect(run('text/event-stream', [body])).toMatchObject({ inputTokens: 30, outputTokens: 1, error: true, seen: true });
  });

  it('a stream without usage (an error alone, pings) is not a metered answer', () => {
    expect(run('text/event-stream', [sse([['ping', { type: 'ping' }], ['error', { type: 'error', error: { type: 'api_error' } }]])])).toMatchObject({ seen: false, error: true });
    expect(run('text/event-stream', [''])).toMatchObject({ seen: false, complete: true, inputTokens: 0 });
  });

  it('records what was seen of a stream cut short, at any point', () => {
    const body = Buffer.from(messageStream());
    // message_start's usage object is whole from here on (the rest of its event may still be cut off).
    const usageWhole = body.indexOf('}', body.indexOf('"usage"')) + 1;
    const startEnd = body.indexOf('event: content_block_start');
    const lastDelta = body.lastIndexOf('event: message_delta');
    for (let i = 0; i <= body.length; i++) {
      const r = run('text/event-stream', [body.subarray(0, i)]);
      if (i < usageWhole) expect(r.seen).toBe(false);
      if (i >= usageWhole) expect(r).toMatchObject({ seen: true, inputTokens: 1200, cacheReadTokens: 300, cacheCreationTokens: 40 });
      if (i >= startEnd) expect(r.model).toBe('claude-sonnet-4-5-20250929');
      // Never more than the stream said, never less than the last delta that came whole.
      expect(r.outputTokens).toBeLessThanOrEqual(57);
      if (i >= body.length - 'event: message_stop\n'.length) expect(r.outputTokens).toBe(57);
      if (i > startEnd && i < lastDelta) expect([1, 28]).toContain(r.outputTokens);
    }
  });

  it('counts an event whose blank line never came (the stream ended after its data line)', () => {
    const body = `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { model: 'm', usage: { input_tokens: 3 } } })}`;
    expect(run('text/event-stream', [body])).toMatchObject({ inputTokens: 3, seen: true, complete: true });
  });

  it('says so when an event could not be read (cut-off or invalid JSON) and goes on', () => {
    const body = `event: message_start\ndata: {"type":"message_start","mess\n\nevent: message_delta\ndata: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 4 } })}\n\n`;
    expect(run('text/event-stream', [body])).toMatchObject({ outputTokens: 4, seen: true, complete: false });
  });

  it('skips an over-long line or event to its end, with bounded memory, and reads what follows', () => {
    const tap = usageTap('text/event-stream', { maxLineBytes: 1024, maxEventBytes: 2048 })!;
    tap.write(Buffer.from('event: content_block_delta\ndata: '));
    for (let i = 0; i < 100; i++) tap.write(Buffer.alloc(10_000, 0x61));
    tap.write(Buffer.from('\n\n'));
    // An event of many short lines, over the event cap.
    tap.write(Buffer.from(`event: message_start\n${'data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n'.repeat(100)}\n`));
    tap.write(Buffer.from(sse([['message_delta', { type: 'message_delta', usage: { output_tokens: 6 } }]])));
    expect(tap.end()).toMatchObject({ outputTokens: 6, complete: false });
  });

  it('leaves the chunks it sees untouched, and keeps its own copy', () => {
    const body = Buffer.from(messageStream());
    const before = Buffer.from(body);
    const tap = usageTap('text/event-stream')!;
    const half = Math.floor(body.length / 2);
    tap.write(body.subarray(0, half));
    // The proxy's buffer is reused or changed after the tap saw it: the tap's answer does not change.
    body.fill(0x20, 0, half);
    tap.write(body.subarray(half));
    expect(tap.end()).toEqual(full);
    expect(body.subarray(half)).toEqual(before.subarray(half));
  });

  it('never throws and never counts outside [0, MAX_TOKENS] on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const r = run('text/event-stream', chunks.map((c) => Buffer.from(c)));
        for (const v of [r.inputTokens, r.outputTokens, r.cacheReadTokens, r.cacheCreationTokens]) {
          expect(Number.isInteger(v) && v >= 0 && v <= MAX_TOKENS).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("reading only the usage of the API's own shape", () => {
  it('falls back to the whole event when usage or model is named more than once, or differently', () => {
    // A second "usage" (in a delta, say): the top-level one is found by parsing, not by position.
    const twice = sse([['message_delta', { type: 'message_delta', delta: { usage: { output_tokens: 1 } }, usage: { output_tokens: 9 } }]]);
    expect(run('text/event-stream', [twice]).outputTokens).toBe(9);
    const twoModels = sse([['message_start', { type: 'message_start', message: { model: 'claude-haiku-4-5', content: [{ type: 'tool_use', input: { model: 'gpt' } }], usage: { input_tokens: 3 } } }]]);
    expect(run('text/event-stream', [twoModels])).toMatchObject({ model: 'claude-haiku-4-5', inputTokens: 3 });
    const spaced = 'event: message_start\ndata: { "type" : "message_start", "message" : { "model" : "m-2", "usage" :\t{ "input_tokens" : 4 } } }\n\n';
    expect(run('text/event-stream', [spaced])).toMatchObject({ model: 'm-2', inputTokens: 4 });
    const escaped = sse([['message_start', { type: 'message_start', message: { model: 'a"b', usage: { input_tokens: 5 } } }]]);
    expect(run('text/event-stream', [escaped])).toMatchObject({ model: undefined, inputTokens: 5 });
    const quoted = sse([['message_delta', { type: 'message_delta', delta: { text: 'the "usage": {"output_tokens": 99}' }, usage: { output_tokens: 2 } }]]);
    expect(run('text/event-stream', [quoted]).outputTokens).toBe(2);
  });

  it('an event line after its data, or two event lines: read when wanted, said when it could not be', () => {
    const late = `data: ${JSON.stringify({ type: 'message_start', message: { model: 'm', usage: { input_tokens: 6 } } })}\nevent: message_start\n\n`;
    expect(run('text/event-stream', [late])).toMatchObject({ inputTokens: 6, complete: true });
    const renamed = `event: content_block_delta\ndata: ${JSON.stringify({ type: 'message_start', message: { model: 'm', usage: { input_tokens: 7 } } })}\nevent: message_start\n\n`;
    expect(run('text/event-stream', [renamed])).toMatchObject({ seen: false, complete: false });
  });
});

describe('counts that lie', () => {
  it.each([
    ['negative', -5, undefined],
    ['huge', 1e300, MAX_TOKENS],
    ['just over the cap', MAX_TOKENS + 1, MAX_TOKENS],
    ['a fraction', 12.9, 12],
    ['a numeric string', '100', undefined],
    ['null', null, undefined],
    ['an object', { n: 1 }, undefined],
    ['a boolean', true, undefined],
    ['zero', 0, 0],
  ])('%s is %s', (_what, value, expected) => {
    expect(tokenCount(value)).toBe(expected);
  });

  it('an ignored value keeps what was seen before; a clamped one is clamped', () => {
    const body = sse([
      ['message_start', { type: 'message_start', message: { model: 'm', usage: { input_tokens: 10, output_tokens: 1, cache_read_input_tokens: 'lots' } } }],
      ['message_delta', { type: 'message_delta', usage: { output_tokens: -100, input_tokens: 1e308, cache_creation_input_tokens: [5] } }],
    ]);
    expect(run('text/event-stream', [body])).toMatchObject({ inputTokens: MAX_TOKENS, outputTokens: 1, cacheReadTokens: 0, cacheCreationTokens: 0, seen: true });
  });

  it('whatever JSON a usage object holds, the counts stay whole numbers in range', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens', 'x'), fc.jsonValue()), fc.jsonValue(), (usage, model) => {
        for (const r of [
          run('text/event-stream', [sse([['message_start', { type: 'message_start', message: { model, usage } }], ['message_delta', { type: 'message_delta', usage }]])]),
          run('application/json', [JSON.stringify({ type: 'message', model, usage })]),
        ]) {
          for (const v of [r.inputTokens, r.outputTokens, r.cacheReadTokens, r.cacheCreationTokens]) expect(Number.isInteger(v) && v >= 0 && v <= MAX_TOKENS).toBe(true);
          expect(r.model === undefined || /^[A-Za-z0-9][\w.:@/+-]*$/.test(r.model)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('a model name is recorded only when it looks like one', () => {
    expect(modelName('claude-sonnet-4-5-20250929')).toBe('claude-sonnet-4-5-20250929');
    expect(modelName('claude-3-7-sonnet@20250219')).toBe('claude-3-7-sonnet@20250219');
    for (const bad of ['', ' claude', 'a\nb', 'x'.repeat(129), '<script>', 42, null, { a: 1 }]) expect(modelName(bad)).toBeUndefined();
  });
});

describe('the JSON tap', () => {
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-haiku-4-5', content: [{ type: 'text', text: 'the "usage": {"input_tokens": 5} of a thing' }], stop_reason: 'end_turn', usage: { input_tokens: 20, output_tokens: 7, cache_read_input_tokens: 2, cache_creation_input_tokens: 1 } };
  const expected = { model: 'claude-haiku-4-5', inputTokens: 20, outputTokens: 7, cacheReadTokens: 2, cacheCreationTokens: 1, seen: true, error: false, complete: true };

  it('reads model and usage at the end, however the body was split', () => {
    const body = Buffer.from(JSON.stringify(message, null, 2));
    fc.assert(
      fc.property(fc.array(fc.nat({ max: body.length }), { maxLength: 20 }), (at) => {
        expect(run('application/json', cut(body, at))).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('takes JSON media types with parameters and suffixes, and nothing else', () => {
    expect(run('Application/JSON; charset=utf-8', [JSON.stringify(message)])).toEqual(expected);
    expect(run('application/vnd.anthropic+json', [JSON.stringify(message)])).toEqual(expected);
    for (const other of [undefined, '', 'text/plain', 'text/html', 'application/octet-stream', 'multipart/form-data']) expect(usageTap(other)).toBeUndefined();
  });

  it('an error body, invalid JSON, a body without usage, count_tokens', () => {
    expect(run('application/json', [JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } })])).toMatchObject({ seen: false, error: true, complete: true });
    expect(run('application/json', ['{"usage": {"input_tokens": 5}'])).toMatchObject({ seen: false, complete: false });
    expect(run('application/json', ['[1,2,3]'])).toMatchObject({ seen: false, complete: true });
    expect(run('application/json', [JSON.stringify({ input_tokens: 1234 })])).toMatchObject({ seen: false });
  });

  it('past its cap keeps the head for the model and the tail for the usage (which the API puts last)', () => {
    const big = { ...message, content: [{ type: 'text', text: `"usage": {"input_tokens": 1} ${'x'.repeat(300_000)}` }] };
    const tap = usageTap('application/json', { maxJsonBytes: 64 * 1024, tailBytes: 8 * 1024 })!;
    const body = Buffer.from(JSON.stringify(big));
    for (let i = 0; i < body.length; i += 1000) tap.write(body.subarray(i, i + 1000));
    expect(tap.end()).toEqual({ ...expected, complete: false });
  });

  it('past its cap without a readable usage at the tail: nothing counted, and said so', () => {
    const tap = usageTap('application/json', { maxJsonBytes: 1024, tailBytes: 256 })!;
    tap.write(Buffer.from(`{"model":"m","content":"${'y'.repeat(5000)}"}`));
    expect(tap.end()).toMatchObject({ model: 'm', seen: false, complete: false });
  });
});

describe('the SSE line reader', () => {
  it('dispatches on blank lines only and treats CR LF split across chunks as one line end', () => {
    const seen: SseMessage[] = [];
    const reader = new SseLineReader((m) => seen.push(m));
    reader.push(Buffer.from('event: a\r'));
    reader.push(Buffer.from('\ndata: 1\r'));
    reader.push(Buffer.from('\n\r'));
    reader.push(Buffer.from('\ndata: 2\n\n'));
    reader.end();
    expect(seen).toEqual([
      { event: 'a', data: '1' },
      { event: '', data: '2' },
    ]);
  });
});
