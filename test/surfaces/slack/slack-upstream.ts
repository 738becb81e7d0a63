import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TestCa } from '../../fixtures/ca.js';

/**
 * A small stand-in for Slack until test/fixtures/fake-slack.ts lands: one
 * HTTPS server for slack.com, files.slack.com, wss-primary.slack.com (and
 * example.com, to show the proxy refuses it, not DNS). Every request is
 * recorded with the Authorization it carried. `POST /api/<method>` answers
 * `{ok: true}` (auth.test with the bot's id; apps.connections.open with a
 * wss URL); `/link` is Socket Mode's WebSocket: `hello` on connect, then
 * whatever `deliver` sends; acks are recorded.
 */
export interface SlackUpstream {
  connectTo: string;
  calls: Array<{ host: string; path: string; authorization?: string; body: string }>;
  acks: string[];
  sockets: WebSocket[];
  /** Sends an events_api envelope to every open Socket Mode connection. */
  deliver(payload: unknown, options?: { retryNum?: number }): string;
  close(): Promise<void>;
}

export const HOSTS = ['slack.com', 'files.slack.com', 'wss-primary.slack.com', 'example.com'];
export const BOT_USER_ID = 'UBOT01';

export async function startSlackUpstream(ca: TestCa): Promise<SlackUpstream> {
  const leaf = await ca.issue(HOSTS);
  const calls: SlackUpstream['calls'] = [];
  const acks: string[] = [];
  const sockets: WebSocket[] = [];
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      calls.push({ host: req.headers.host ?? '', path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body: Buffer.concat(chunks).toString('utf8') });
      const method = /^\/api\/([\w.]+)/.exec(path)?.[1];
      const answer =
        method === 'auth.test' ? { ok: true, user_id: BOT_USER_ID, team_id: 'T01' }
        : method === 'apps.connections.open' ? { ok: true, url: 'wss://wss-primary.slack.com/link?ticket=t1' }
        : { ok: true };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  const wss = new WebSocketServer({ server, path: '/link' });
  wss.on('connection', (ws, req) => {
    calls.push({ host: req.headers.host ?? '', path: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body: '' });
    sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as { envelope_id?: string };
      if (msg.envelope_id) acks.push(msg.envelope_id);
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let n = 0;
  return {
    connectTo: HOSTS.map((h) => `${h}:443:127.0.0.1:${port}`).join(','),
    calls,
    acks,
    sockets,
    deliver: (payload, options = {}) => {
      n += 1;
      const envelope_id = `env-${n}`;
      const frame = JSON.stringify({ type: 'events_api', envelope_id, payload, accepts_response_payload: false, ...(options.retryNum !== undefined ? { retry_attempt: options.retryNum, retry_reason: 'timeout' } : {}) });
      for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(frame);
      return envelope_id;
    },
    close: async () => {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
