import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WebClient } from '@slack/web-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace } from '../../../src/access/workspaces-repo.js';
import { lookupUser, SYSTEM_USERS } from '../../../src/system/accounts.js';
import type { SlackWorkspace } from '../../../src/surfaces/slack/model.js';
import { slackListenerSession } from '../../../src/surfaces/slack/slack-api-policy.js';
import { slackWebClient } from '../../../src/surfaces/slack/slack-clients.js';
import { openSlackTransport, type SlackTransport } from '../../../src/surfaces/slack/slack-transport.js';
import { createTestCa, type TestCa } from '../../fixtures/ca.js';
import { BACKENDS } from '../../helpers/backends.js';
import { startSlackProxy, type SlackProxyHarness } from './proxy-harness.js';
import { startSlackUpstream, type SlackUpstream } from './slack-upstream.js';

const BOT = 'xoxb-bot-token-7f3a91';
const APP = 'xapp-app-token-c0ffee';

/** What undici's `fetch failed` hides: our connector's error. */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const cause = (error as { cause?: Error }).cause;
    return `${(error as Error).message} <- ${cause?.message ?? ''}`;
  }
  throw new Error('expected a failure');
}

describe.each(BACKENDS)('the Slack transport through the Agent Proxy (%s)', (backend) => {
  let ca: TestCa;
  let upstream: SlackUpstream;
  let h: SlackProxyHarness;
  let ws: SlackWorkspace;
  let socketPath: string;
  let transport: SlackTransport;

  beforeAll(async () => {
    ca = await createTestCa('Fake Slack CA');
    upstream = await startSlackUpstream(ca);
    h = await startSlackProxy(backend, { TAGBOX_UPSTREAM_CONNECT_TO: upstream.connectTo, TAGBOX_UPSTREAM_CA_FILE: ca.certFile });
    ws = await h.slackWorkspace({ teamId: 'T01', botToken: BOT, appToken: APP });
    socketPath = join(h.runDir, `slack-${ws.workspaceId}.sock`);
    await h.proxy.openSlackListener(ws.workspaceId, socketPath);
    transport = openSlackTransport({ socketPath, caPem: await h.proxy.caCert() });
  }, 60_000);

  afterAll(async () => {
    await transport?.close();
    await h?.close();
    await upstream?.close();
  });

  it('sends a WebClient call to slack.com with the bot token the client never had', async () => {
    const client = slackWebClient(transport);
    const answer = await client.chat.postMessage({ channel: 'C1', text: 'hello' });
    expect(answer.ok).toBe(true);
    const call = upstream.calls.find((c) => c.path === '/api/chat.postMessage')!;
    expect(call.host).toBe('slack.com');
    expect(call.authorization).toBe(`Bearer ${BOT}`);
    expect(call.body).toContain('text=hello');
  });

  it("replaces a client-supplied Authorization (a forged token never reaches Slack)", async () => {
    const forged = new WebClient('xoxb-forged-by-the-client', { fetch: transport.fetch as never });
    await forged.conversations.info({ channel: 'C2' });
    const call = upstream.calls.find((c) => c.path === '/api/conversations.info')!;
    expect(call.authorization).toBe(`Bearer ${BOT}`);
    expect(JSON.stringify(upstream.calls)).not.toContain('forged');
  });

  it('gives the app-level token to apps.connections.open alone; files.slack.com gets the bot token', async () => {
    const client = slackWebClient(transport);
    await client.apps.connections.open({});
    await client.users.info({ user: 'U1' });
    const files = await transport.fetch('https://files.slack.com/files-pri/T01-F1/a.txt');
    expect(files.status).toBe(200);
    const byPath = (p: string) => upstream.calls.filter((c) => c.path.startsWith(p));
    expect(byPath('/api/apps.connections.open').map((c) => c.authorization)).toEqual([`Bearer ${APP}`]);
    expect(byPath('/api/users.info').map((c) => c.authorization)).toEqual([`Bearer ${BOT}`]);
    expect(byPath('/files-pri/').map((c) => [c.host, c.authorization])).toEqual([['files.slack.com', `Bearer ${BOT}`]]);
    expect(upstream.calls.filter((c) => c.authorization === `Bearer ${APP}`).map((c) => c.path)).toEqual(['/api/apps.connections.open']);
  });

  it('refuses a host outside Slack (the proxy answers 403 before any TLS)', async () => {
    const before = upstream.calls.length;
    const said = await failure(transport.fetch('https://example.com/api/auth.test', { method: 'POST' }));
    expect(said).toMatch(/refused CONNECT example\.com:443: 403/);
    expect(upstream.calls.length).toBe(before);
  });

  it('never writes a token into the audit log, and audits the calls as the workspace listener', async () => {
    const session = slackListenerSession(ws.workspaceId);
    const end = Date.now() + 10_000;
    let rows: Array<{ type: string; session_id: string | null; data: string }> = [];
    while (Date.now() < end) {
      rows = await h.store.db.selectFrom('audit_events').select(['type', 'session_id', 'data']).execute();
      if (rows.some((r) => r.session_id === session && r.data.includes('example.com'))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rows.filter((r) => r.session_id === session && r.type === 'egress').length).toBeGreaterThanOrEqual(5);
    const all = JSON.stringify(rows);
    expect(all).not.toContain(BOT);
    expect(all).not.toContain(APP);
  });

  it('refuses a workspace that is not a Slack workspace', async () => {
    const web = await createWorkspace(h.store.db, { orgId: h.orgId, kind: 'web', externalId: 'web-2', name: 'web 2' });
    await expect(h.proxy.openSlackListener(web.id, join(h.runDir, 'slack-web.sock'))).rejects.toThrow(/is not a Slack workspace/);
    await expect(h.proxy.openSlackListener('no-such-workspace', join(h.runDir, 'slack-none.sock'))).rejects.toThrow(/no-such-workspace is not a Slack workspace/);
  });

  it('says what failed: the listener unreachable, or TLS not verifiable against the given CA', async () => {
    const nowhere = openSlackTransport({ socketPath: join(h.runDir, 'no-listener.sock'), caPem: await h.proxy.caCert() });
    expect(await failure(nowhere.fetch('https://slack.com/api/auth.test', { method: 'POST' }))).toMatch(/Slack listener .*no-listener\.sock is unreachable \(ENOENT\)/);
    await nowhere.close();
    const other = await createTestCa('Not the deployment CA');
    const wrongCa = openSlackTransport({ socketPath, caPem: other.certPem });
    expect(await failure(wrongCa.fetch('https://slack.com/api/auth.test', { method: 'POST' }))).toMatch(/TLS with slack\.com through the Agent Proxy failed/);
    await wrongCa.close();
  });

  it('keeps the listener to the server: 0660, and another uid (a sandbox user) cannot connect', async () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o660);
    if (process.getuid!() !== 0) return;
    // Directories that let anyone through: only the socket's own mode stands in the way.
    const other = await h.slackWorkspace({ teamId: 'T02', botToken: 'xoxb-other' });
    const open = join(h.backend.home, 'open-run');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(h.backend.home, 0o711);
    const exposed = join(open, `slack-${other.workspaceId}.sock`);
    await h.proxy.openSlackListener(other.workspaceId, exposed);
    const sandbox = lookupUser(SYSTEM_USERS.sandbox) ?? lookupUser('nobody')!;
    const dial = (as: { uid: number; gid: number }) =>
      spawnSync(process.execPath, ['-e', `require('net').createConnection(${JSON.stringify(exposed)}).on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`], { ...as, encoding: 'utf8' }).stdout.trim();
    expect(dial({ uid: sandbox.uid, gid: sandbox.gid })).toBe('EACCES');
    // The same probe as the server's uid connects: the refusal above is the socket's mode.
    expect(dial({ uid: process.getuid!(), gid: process.getgid!() })).toBe('connected');
    await h.proxy.closeListener(slackListenerSession(other.workspaceId));
  });
});
