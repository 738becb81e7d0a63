import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { TestCa } from '../fixtures/ca.js';

/**
 * A minimal Messages API for the meter's tests, with the raw misbehaviours
 * they need (lying counts, garbage, gzip, a held stream) that the scripted
 * fake of the engine tests (test/fixtures/fake-anthropic.ts) does not: HTTPS
 * with the test CA, for api.anthropic.com and a second name. The answer is
 * chosen by the `s` query parameter, so that a test says what the model
 * "returns" in the request it sends through the proxy:
 *   sse (default)  a streamed answer: message_start, pings, text, two message_deltas
 *   json           a non-streamed answer
 *   big            a streamed answer of BIG_INPUT input tokens
 *   slow           message_start, then nothing until `release()`
 *   lying          usage fields that are negative, huge, strings, null
 *   garbage        bytes that are not SSE at all, as text/event-stream
 *   gzip           a JSON answer gzip-encoded whatever the request asked for
 *   error          a 529 overloaded error (JSON), no usage
 */
export const SSE_USAGE = { model: 'claude-sonnet-4-5-20250929', inputTokens: 1200, outputTokens: 57, cacheReadTokens: 300, cacheCreationTokens: 40 };
export const JSON_USAGE = { model: 'claude-haiku-4-5-20251001', inputTokens: 20, outputTokens: 7, cacheReadTokens: 2, cacheCreationTokens: 1 };
export const BIG_INPUT = 100_000;

export interface FakeMessagesApi {
  port: number;
  /** Every request received (method, path, headers), in order. */
  received: Array<{ method: string; path: string; headers: IncomingMessage['headers'] }>;
  /** Lets every `slow` answer that is waiting go on. */
  release(): void;
  /** Resolves when a `slow` answer has sent its first event and is waiting. */
  waiting(): Promise<void>;
  /** Whether the last `slow` answer has written its last event. */
  finishedSlow(): boolean;
  close(): Promise<void>;
}

const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

export function streamOf(u: { model: string; inputTokens: number; outputTokens: number; cacheReadTokens: number; cacheCreationTokens: number }): { start: string; rest: string } {
  return {
    start: event('message_start', {
      type: 'message_start',
      message: { id: 'msg_1', type: 'message', role: 'assistant', model: u.model, content: [], stop_reason: null, usage: { input_tokens: u.inputTokens, output_tokens: 1, cache_read_input_tokens: u.cacheReadTokens, cache_creation_input_tokens: u.cacheCreationTokens } },
    }),
    rest:
      event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
      event('ping', { type: 'ping' }) +
      event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } }) +
      event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: Math.ceil(u.outputTokens / 2) } }) +
      event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: u.outputTokens } }) +
      event('message_stop', { type: 'message_stop' }),
  };
}

export async function startFakeMessagesApi(ca: TestCa, names = ['api.anthropic.com', 'echo.test']): Promise<FakeMessagesApi> {
  const leaf = await ca.issue(names);
  const received: FakeMessagesApi['received'] = [];
  let releases: Array<() => void> = [];
  let waiters: Array<() => void> = [];
  let slowDone = false;
  const sockets = new Set<Socket>();

  const answer = async (req: IncomingMessage, res: ServerResponse, scenario: string) => {
    const sseHead = () => res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    if (scenario === 'json') {
      const body = JSON.stringify({ id: 'msg_2', type: 'message', role: 'assistant', model: JSON_USAGE.model, content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn', usage: { input_tokens: JSON_USAGE.inputTokens, output_tokens: JSON_USAGE.outputTokens, cache_read_input_tokens: JSON_USAGE.cacheReadTokens, cache_creation_input_tokens: JSON_USAGE.cacheCreationTokens } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    if (scenario === 'gzip') {
      const body = gzipSync(JSON.stringify({ type: 'message', model: JSON_USAGE.model, content: [], usage: { input_tokens: 11, output_tokens: 22 } }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length });
      return void res.end(body);
    }
    if (scenario === 'error') {
      const body = JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      res.writeHead(529, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    if (scenario === 'garbage') {
      sseHead();
      res.write(Buffer.from([0xff, 0xfe, 0x0d, 0x00, 0x0a, 0x3a, 0x0d, 0x0d]));
      return void res.end('data: {"type":"message_start","message":{"usage":{"input_tokens":\n\n\n\x00');
    }
    if (scenario === 'lying') {
      sseHead();
      res.write(event('message_start', { type: 'message_start', message: { model: 'claude-sonnet-4-5\u0000<evil>', usage: { input_tokens: -5, output_tokens: 'lots', cache_read_input_tokens: 1e300, cache_creation_input_tokens: null } } }));
      return void res.end(event('message_delta', { type: 'message_delta', usage: { output_tokens: -1, input_tokens: { $gt: 1 } } }));
    }
    const usage = scenario === 'big' ? { ...SSE_USAGE, inputTokens: BIG_INPUT } : SSE_USAGE;
    const { start, rest } = streamOf(usage);
    sseHead();
    res.write(start);
    if (scenario === 'slow') {
      slowDone = false;
      await new Promise<void>((resolve) => {
        releases.push(resolve);
        for (const w of waiters) w();
        waiters = [];
      });
      if (res.destroyed) return;
      res.end(rest, () => (slowDone = true));
      return;
    }
    res.end(rest);
  };

  const server: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const scenario = new URL(req.url ?? '/', 'https://x').searchParams.get('s') ?? 'sse';
      void answer(req, res, scenario);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    release: () => {
      const r = releases;
      releases = [];
      for (const f of r) f();
    },
    waiting: () => (releases.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    finishedSlow: () => slowDone,
    close: async () => {
      for (const f of releases) f();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
