import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_TOKEN_PLACEHOLDER } from '../../src/surfaces/slack/slack-clients.js';
import { createTestCa } from '../fixtures/ca.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { startFakeSlack, type FakeSlack } from '../fixtures/fake-slack.js';
import { E2E_TIMEOUT, startUp, until, type Up } from './up-harness.js';

/**
 * Slack through the real `tagbox up` (launcher, server, Agent Proxy; separated
 * users when root): a mention in Socket Mode answered in its thread, and the
 * server process never holding the bot or app token — not in its environment,
 * its arguments, its logs, nor anywhere in its heap (a snapshot taken by
 * signal at the end, searched for both tokens).
 */
describe('Slack under tagbox up', () => {
  let fake: FakeSlack;
  let up: Up;
  let owner: string;
  let heapDir: string;
  let backend: TestBackend;

  beforeAll(async () => {
    const ca = await createTestCa();
    // The proxy runs as tagbox-proxy when separated: it must read the upstream CA.
    chmodSync(dirname(ca.certFile), 0o755);
    fake = await startFakeSlack({ ca });
    heapDir = mkdtempSync('/tmp/tagbox-heap-');
    chmodSync(heapDir, 0o777);
    backend = await createTestBackend('sqlite');
    up = await startUp({
      ...backend.env,
      TAGBOX_UPSTREAM_CONNECT_TO: fake.connectTo,
      TAGBOX_UPSTREAM_CA_FILE: ca.certFile,
      NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${heapDir}`,
    });
    owner = up.token!;
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await fake?.close();
    await backend?.cleanup();
    rmSync(heapDir, { recursive: true, force: true });
  }, E2E_TIMEOUT);

  it('answers a mention in its thread, and the server never holds a Slack token', async () => {
    for (const [name, value] of [['acme-slack-bot', fake.botToken], ['acme-slack-app', fake.appToken]]) {
      const put = await up.api(owner, 'PUT', `/secrets/${name}`, { value });
      expect(put.status, put.text).toBeLessThan(300);
    }
    const ws = await up.api(owner, 'POST', '/workspaces', { kind: 'slack', externalId: fake.teamId, name: 'Acme', slack: { mode: 'socket', botTokenSecret: 'acme-slack-bot', appTokenSecret: 'acme-slack-app' } });
    expect(ws.status, ws.text).toBe(201);
    await until('Socket Mode connected through the proxy', () => (fake.socket.connections > 0 ? true : undefined));
    fake.addUser({ id: 'UALICE', name: 'alice' });
    fake.addChannel({ id: 'C0GEN', name: 'general-slack' });
    const { ts, payloads } = fake.userMessage({ channel: 'C0GEN', user: 'UALICE', text: `<@${fake.botUserId}> echo hello-from-slack` });
    for (const payload of payloads) expect(await fake.socket.deliver(payload)).toBe(true);
    await until('the answer in the thread', () => fake.messages('C0GEN', ts).find((m) => m.user === fake.botUserId && m.text.includes('hello-from-slack')), 90_000);
    // The proxy, and only it, sent the tokens.
    expect(fake.calls.filter((c) => c.method === 'apps.connections.open').every((c) => c.authorization === `Bearer ${fake.appToken}`)).toBe(true);
    expect(fake.calls.filter((c) => c.method === 'chat.postMessage' || c.method === 'chat.startStream').every((c) => c.authorization === `Bearer ${fake.botToken}`)).toBe(true);

    const server = serverPid(up.launcher.pid!);
    const tokens = [fake.botToken, fake.appToken];
    const environ = readFileSync(`/proc/${server}/environ`, 'latin1');
    const cmdline = readFileSync(`/proc/${server}/cmdline`, 'latin1');
    for (const token of tokens) {
      expect(environ).not.toContain(token);
      expect(cmdline).not.toContain(token);
      expect(up.stdout() + up.stderr()).not.toContain(token);
    }
    process.kill(server, 'SIGUSR2');
    const snapshot = await until('the heap snapshot', () => {
      const file = readdirSync(heapDir).find((f) => f.endsWith('.heapsnapshot') && f.includes(`.${server}.`));
      if (!file) return undefined;
      const path = join(heapDir, file);
      const size = statSync(path).size;
      // Written in one go and closed; wait until its size holds still.
      return size > 0 && Date.now() - statSync(path).mtimeMs > 1500 ? path : undefined;
    }, 120_000);
    const heap = readFileSync(snapshot, 'latin1');
    // The search works: the heap holds what the server does hold (a vault name, the placeholder its Socket Mode client sends).
    expect(heap).toContain('acme-slack-bot');
    expect(heap).toContain(APP_TOKEN_PLACEHOLDER);
    for (const token of tokens) expect(heap.includes(token), 'a Slack token in the server heap').toBe(false);
  }, E2E_TIMEOUT);
});

/** The server child of the launcher (its `server-daemon` process). */
function serverPid(launcher: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === launcher && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('server-daemon')) return Number(entry);
    } catch {
      // A process that ended while we looked.
    }
  }
  throw new Error(`no server-daemon child of ${launcher}`);
}

