import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { runTagbox } from '../helpers/cli.js';

// eslint-disable-next-line no-control-regex -- the point of the test
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/**
 * `tagbox chat` against a server that does not neutralise anything (an old
 * one, a compromised one, a proxy in between): the client must not rely on
 * the real server's filtering. Every field it prints carries terminal
 * sequences; the stream drops mid-turn, in the middle of an event, and the
 * server replays an event on the reconnect.
 */
describe('tagbox chat against a hostile server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections();
  });

  const ESC = '\u001b';
  const evil = `${ESC}]0;pwned-title\u0007${ESC}]52;c;cHduZWQ=\u0007${ESC}[2J${ESC}[H\u009b31m\u202e`;
  const turn = 'turn-1';
  const sse = (seq: number, type: string, data: Record<string, unknown>) => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ ...data, turn })}\n\n`;

  async function hostile(): Promise<{ url: string; resumes: string[]; posts: Array<Record<string, unknown>> }> {
    const resumes: string[] = [];
    const posts: Array<Record<string, unknown>> = [];
    let streams = 0;
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method === 'GET' && req.url === '/api/v1/channels') return json(200, [{ id: 'c1', name: 'general' }, { id: 'c2', name: `ops${evil}` }]);
      if (req.method === 'POST' && req.url === '/api/v1/channels/c1/messages') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString('utf8'))).on('end', () => {
          posts.push({ key: req.headers['idempotency-key'], ...(JSON.parse(body) as Record<string, unknown>) });
          json(202, { thread: 't1', message: 'm1' });
        });
        return;
      }
      if (req.method === 'GET' && req.url === '/api/v1/threads/t1/events') {
        streams++;
        resumes.push(String(req.headers['last-event-id']));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (streams === 1) {
          res.write(': hello\n\n');
          res.write(sse(1, 'message', { id: 'old', author: { kind: 'member', name: 'x' }, text: `history${evil}` }));
          res.write(sse(2, 'message', { id: 'm1', author: { kind: 'member', name: 'Owner' }, text: 'do it' }));
          res.write(sse(3, 'status', { state: 'queued', ahead: 1, text: `queued${evil}` }));
          res.write(sse(4, 'status', { state: 'running' }));
          // One event across two writes, CRLF line ends, data on two lines.
          res.write(`id: 5\r\nevent: progress\r\ndata: {"turn":"${turn}",\r\n`);
          res.write(`data: "text":${JSON.stringify(`out${evil}put\r\n`)}}\r\n\r\n`);
          res.write(sse(6, 'notice', { text: `blocked ${evil}evil.example`, host: 'evil.example' }));
          res.write(sse(7, 'message', { author: { kind: 'member', name: `Mallory${evil}` }, text: `hi${evil}` }));
          // Dropped in the middle of an event that never completes.
          res.write('id: 8\nevent: progress\ndata: {"turn":"turn-1","text":"never shown');
          setTimeout(() => res.destroy(), 50);
          return;
        }
        // The reconnect: replays 7 (already seen), then the rest.
        res.write(sse(7, 'message', { author: { kind: 'member', name: 'Mallory' }, text: 'replayed' }));
        res.write(sse(8, 'progress', { text: `more${ESC}[1A\n` }));
        res.write(sse(9, 'error', { message: `bad${evil}` }));
        res.write(sse(10, 'message', { author: { kind: 'agent' }, text: `output\nmore\n[exit code 0]${evil}` }));
        res.write(sse(11, 'done', { status: 'done', exitCode: 0 }));
        return;
      }
      json(404, { error: { code: 'not_found', message: `no ${req.url}${evil}` } });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server!.address() as { port: number }).port}`, resumes, posts };
  }

  it('prints no terminal sequence from any field, resumes after the drop from the last event, and shows nothing twice', async () => {
    const h = await hostile();
    const r = await runTagbox(['chat', '--url', h.url, '--token', 'tbx_test', 'do it']);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('output\nmore\n[exit code 0]\n');
    expect(r.stderr).toContain('tagbox: queued');
    expect(r.stderr).toContain('tagbox: blocked evil.example');
    expect(r.stderr).toContain('tagbox: Mallory: hi');
    expect(r.stderr).toContain('reconnected');
    expect(r.stderr).toContain('tagbox: error: bad');
    expect(r.stderr).not.toContain('replayed');
    expect(r.stderr).not.toContain('history');
    expect(r.stdout + r.stderr).not.toContain('pwned-title');
    expect(r.stdout + r.stderr).not.toContain('never shown');
    expect(r.stderr).toMatch(/thread: t1\n$/);
    // From the start of the new thread, then from the last complete event.
    expect(h.resumes).toEqual(['0', '7']);
    expect(h.posts).toEqual([{ key: expect.stringMatching(/^tagbox-chat-[0-9a-f-]{36}$/), text: 'do it' }]);
  });

  it("an error's and a channel list's words are stripped too", async () => {
    const h = await hostile();
    const unknown = await runTagbox(['chat', '--url', h.url, '--token', 'tbx_test', '--channel', 'nope', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Channels you may use: #general (c1), #ops');
    expect(unknown.stderr).not.toMatch(CONTROL);
    const missing = await runTagbox(['chat', '--url', h.url, '--token', 'tbx_test', '--thread', 'gone', 'x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404 no /api/v1/threads/gone');
    expect(missing.stderr).not.toMatch(CONTROL);
  });
});
