/**
 * The usage-tap benchmark's upstream, in its own process: a minimal HTTPS
 * Messages API on loopback answering every request with one streamed answer
 * (text/event-stream, chunked, keep-alive) shaped like the real API's:
 * message_start with usage, pings and text deltas, two message_deltas.
 * argv: certFile keyFile. Prints {"port":N} when ready; answers "stats" on
 * stdin with {"requests":N}.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

const [certFile, keyFile] = process.argv.slice(2);
const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
const start = Buffer.from(
  event('message_start', {
    type: 'message_start',
    message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, usage: { input_tokens: 1200, output_tokens: 1, cache_read_input_tokens: 300, cache_creation_input_tokens: 40 } },
  }) + event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
);
const deltas = Buffer.from(
  event('ping', { type: 'ping' }) +
    Array.from({ length: 8 }, (_, i) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `word ${i} of a streamed answer ` } })).join(''),
);
const end = Buffer.from(
  event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
    event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 30 } }) +
    event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 57 } }) +
    event('message_stop', { type: 'message_stop' }),
);
let requests = 0;
const server = createServer({ cert: readFileSync(certFile!), key: readFileSync(keyFile!), ALPNProtocols: ['http/1.1'] }, (req, res) => {
  requests += 1;
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    // Three writes, as a stream arrives: the tap sees several chunks per answer.
    res.write(start);
    res.write(deltas);
    res.end(end);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.stdin.on('data', () => process.stdout.write(`${JSON.stringify({ requests })}\n`));
process.stdin.on('end', () => process.exit(0));
