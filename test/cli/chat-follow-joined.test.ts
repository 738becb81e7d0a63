import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../../src/cli/api-client.js';
import { followTurn } from '../../src/cli/chat/follow-turn.js';
import { jsonView } from '../../src/cli/chat/turn-view.js';
import type { CliContext } from '../../src/cli/context.js';

/**
 * `tagbox chat` follows its message when the engine takes it into the turn
 * that was running (its queued turn ends `joined`, `into` the running one):
 * it shows that turn's answer and ends at that turn's `done`. A real HTTP
 * server serves the thread's SSE stream, as the server writes it.
 */
describe('tagbox chat and a joined turn', () => {
  let server: Server;
  let url: string;
  const events = [
    { type: 'message', data: { id: 'm1', author: { kind: 'member' }, text: 'start', turn: 't1' } },
    { type: 'status', data: { state: 'running', turn: 't1' } },
    { type: 'message', data: { id: 'm2', author: { kind: 'member' }, text: 'and also this', turn: 't2' } },
    { type: 'message', data: { id: 'a1', author: { kind: 'agent' }, text: 'first answer', turn: 't1' } },
    { type: 'done', data: { turn: 't2', status: 'joined', into: 't1' } },
    { type: 'message', data: { id: 'a2', author: { kind: 'agent' }, text: 'second answer', turn: 't1' } },
    { type: 'done', data: { turn: 't1', status: 'done' } },
  ];
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      events.forEach((e, i) => res.write(`id: ${i + 1}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('switches to the turn it joined, shows its answers and ends at its done', async () => {
    const out: string[] = [];
    const sink = { write: (text: string) => void out.push(text) };
    const client = apiClient({ config: { server: { host: '127.0.0.1', port: 1 } }, paths: { ownerToken: '/nonexistent' } } as unknown as CliContext, { url, token: 't' });
    const outcome = await followTurn(client, { thread: 'th', message: 'm2', after: 0, view: jsonView(sink, sink), signal: new AbortController().signal });
    expect(outcome).toEqual({ exitCode: 0, cursor: 7 });
    const shown = out.join('');
    expect(shown).toContain('second answer');
    expect(shown).not.toContain('first answer');
  });
});
