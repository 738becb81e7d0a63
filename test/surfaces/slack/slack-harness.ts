import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { configSchema, type TagboxConfig } from '../../../src/config/schema.js';
import { slackEventsEndpoint, SLACK_EVENTS_PATH } from '../../../src/surfaces/slack/events-endpoint.js';
import { SlackSurface } from '../../../src/surfaces/slack/slack-surface.js';
import { FILES_INSIDE, sessionFiles } from '../../../src/surfaces/slack/slack-files.js';
import { createTestCa, type TestCa } from '../../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../../fixtures/echo-upstream.js';
import { startFakeSlack, type FakeSlack, type UserMessageInput } from '../../fixtures/fake-slack.js';
import type { BackendName } from '../../helpers/backends.js';
import { logger, startSessions, type SessionHarness } from '../../sessions/harness.js';

/**
 * The Slack surface end to end in this process, over real parts: the session
 * layer and a real Agent Proxy daemon (test/sessions/harness.ts), the surface
 * as the server assembles it, the Events API endpoint on a real HTTP port, and
 * the fake Slack reached only through the proxy (upstream.connectTo), driven
 * by the real Slack client libraries.
 */
export interface SlackHarness {
  h: SessionHarness;
  fake: FakeSlack;
  ca: TestCa;
  /** An HTTPS upstream for allowed.echo.test and denied.echo.test. */
  echo: EchoUpstream;
  surface: SlackSurface;
  workspaceId: string;
  /** The Events API endpoint's URL (events mode). */
  eventsUrl: string;
  /** Delivers one payload the way the workspace's mode does (a Socket Mode envelope, or a signed POST). */
  send(payload: unknown, options?: { retryNum?: number }): Promise<void>;
  /** A person writes in Slack: the message is stored and every event Slack would send for it is delivered. */
  say(input: UserMessageInput): Promise<string>;
  close(): Promise<void>;
}

export async function startSlackHarness(backend: BackendName, mode: 'socket' | 'events', slack: Partial<TagboxConfig['slack']> = {}): Promise<SlackHarness> {
  const ca = await createTestCa();
  const fake = await startFakeSlack({ ca });
  // A host a channel's bundle can allow (the sandbox reaches it through the proxy like any host).
  const echo = await startEchoUpstream({ ca, names: ['allowed.echo.test', 'denied.echo.test'] });
  const echoTo = ['allowed.echo.test', 'denied.echo.test'].map((host) => `${host}:443:127.0.0.1:${echo.httpsPort}`).join(',');
  // The store is the harness's own, made below: the callback reads it once it exists.
  const held: { db?: SessionHarness['store']['db'] } = {};
  const h = await startSessions(backend, {}, [], {
    daemonEnv: { TAGBOX_UPSTREAM_CONNECT_TO: `${fake.connectTo},${echoTo}`, TAGBOX_UPSTREAM_CA_FILE: ca.certFile },
    // As the server wires it: a Slack thread's files are copied into its sandbox at each turn.
    filesFor: async (session) => ({ dir: FILES_INSIDE, files: held.db ? await sessionFiles(held.db, session.id) : [] }),
  });
  held.db = h.store.db;
  await h.proxy.secrets.put('slack-bot', Buffer.from(fake.botToken));
  await h.proxy.secrets.put('slack-app', Buffer.from(fake.appToken));
  const ws = await h.access.createWorkspace(
    h.owner.id,
    { orgId: h.orgId, kind: 'slack', externalId: fake.teamId, name: 'Acme', slack: { mode, botTokenSecret: 'slack-bot', ...(mode === 'socket' ? { appTokenSecret: 'slack-app' } : {}) } },
  );
  const config = { ...configSchema.parse({}).slack, signingSecret: fake.signingSecret, ...slack };
  const surface = new SlackSurface({ store: h.store, port: h.layer.service, hub: h.layer.hub, proxy: h.proxy, runDir: `${h.backend.home}/run`, config, logger, syncMs: 200 });
  const app: FastifyInstance = Fastify();
  await app.register(slackEventsEndpoint({ signingSecret: config.signingSecret, receive: (team, payload) => surface.receiveHttp(team, payload) }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  await surface.start();
  const eventsUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}${SLACK_EVENTS_PATH}`;
  const send = async (payload: unknown, options: { retryNum?: number } = {}) => {
    if (mode === 'socket') {
      if (!(await fake.socket.deliver(payload, options))) throw new Error('the Socket Mode envelope was not acknowledged');
    } else {
      const answer = await fake.deliverEvent(eventsUrl, payload, options);
      if (answer.status !== 200) throw new Error(`the Events API answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
  };
  await h.until('the Slack workspace connected', async () => surface.isConnected(ws.id) && (mode === 'events' || fake.socket.connections > 0), 60_000);
  return {
    h,
    fake,
    ca,
    echo,
    surface,
    workspaceId: ws.id,
    eventsUrl,
    send,
    say: async (input) => {
      const { ts, payloads } = fake.userMessage(input);
      for (const payload of payloads) await send(payload);
      return ts;
    },
    close: async () => {
      await app.close();
      await surface.stop();
      await h.close();
      await fake.close();
      await echo.close();
    },
  };
}
