import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSlackWorkspace } from '../../../src/surfaces/slack/slack-workspaces-repo.js';
import { SlackConnection, type SocketEnvelope } from '../../../src/surfaces/slack/slack-connection.js';
import { createTestCa } from '../../fixtures/ca.js';
import { BACKENDS } from '../../helpers/backends.js';
import { logger, startSlackProxy, type SlackProxyHarness } from './proxy-harness.js';
import { BOT_USER_ID, startSlackUpstream, type SlackUpstream } from './slack-upstream.js';

const BOT = 'xoxb-conn-bot-4d2e';
const APP = 'xapp-conn-app-9b1c';

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(BACKENDS)('SlackConnection (%s)', (backend) => {
  let upstream: SlackUpstream;
  let h: SlackProxyHarness;
  let connection: SlackConnection;
  const envelopes: SocketEnvelope[] = [];

  beforeAll(async () => {
    const ca = await createTestCa('Fake Slack CA');
    upstream = await startSlackUpstream(ca);
    h = await startSlackProxy(backend, { TAGBOX_UPSTREAM_CONNECT_TO: upstream.connectTo, TAGBOX_UPSTREAM_CA_FILE: ca.certFile });
  }, 60_000);

  afterAll(async () => {
    await connection?.close();
    await h?.close();
    await upstream?.close();
  });

  it('opens its listener, asks auth.test through it and stores the bot user id', async () => {
    const workspace = await h.slackWorkspace({ teamId: 'T01', botToken: BOT, appToken: APP });
    connection = await SlackConnection.open({ proxy: h.proxy, workspace, runDir: h.runDir, db: h.store.db, logger });
    expect(connection.botUserId).toBe(BOT_USER_ID);
    expect((await getSlackWorkspace(h.store.db, workspace.workspaceId))?.botUserId).toBe(BOT_USER_ID);
    expect(upstream.calls.find((c) => c.path === '/api/auth.test')?.authorization).toBe(`Bearer ${BOT}`);
  });

  it('receives Socket Mode envelopes through the proxy, and acks them', async () => {
    await connection.startSocketMode(async (envelope) => {
      envelopes.push(envelope);
      await envelope.ack();
    });
    expect(upstream.calls.filter((c) => c.path === '/api/apps.connections.open').map((c) => c.authorization)).toEqual([`Bearer ${APP}`]);
    // The WebSocket went to Slack's wss host, through the proxy, with no token of any kind.
    const upgrade = upstream.calls.find((c) => c.path.startsWith('/link'))!;
    expect(upgrade.host).toBe('wss-primary.slack.com');
    expect(upgrade.authorization).toBeUndefined();
    const id = upstream.deliver({ team_id: 'T01', event_id: 'Ev1', event: { type: 'app_mention', text: 'hi' } }, { retryNum: 2 });
    const got = await until('the envelope', () => envelopes[0]);
    expect(got.body).toMatchObject({ event_id: 'Ev1', event: { type: 'app_mention' } });
    expect(got.retryNum).toBe(2);
    await until('the ack', () => upstream.acks.includes(id));
  });

  it('reopens its listener after the proxy restarted: Web API calls and Socket Mode carry on', async () => {
    await h.restartProxy();
    const answer = await connection.client.chat.postMessage({ channel: 'C1', text: 'after restart' });
    expect(answer.ok).toBe(true);
    expect(upstream.calls.filter((c) => c.path === '/api/chat.postMessage').at(-1)?.authorization).toBe(`Bearer ${BOT}`);
    await until('a second Socket Mode connection', () => upstream.sockets.filter((s) => s.readyState === s.OPEN).length === 1 && upstream.sockets.length === 2);
    const id = upstream.deliver({ team_id: 'T01', event_id: 'Ev2', event: { type: 'message', text: 'again' } });
    await until('the envelope after the restart', () => envelopes.find((e) => (e.body as { event_id: string }).event_id === 'Ev2'));
    await until('its ack', () => upstream.acks.includes(id));
  }, 60_000);

  it('closes: the listener is gone', async () => {
    await connection.close();
    expect(await h.proxy.closeListener(connection.session)).toBe(false);
  });
});
