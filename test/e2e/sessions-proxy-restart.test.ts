import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoUpstream } from '../fixtures/echo-upstream.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { processes, stillAlive } from './processes.js';
import { agentTexts, answered, eventsOfTurn, readEvents, startUp, systemTexts, turnOfMessage, until, webWorkspace, type Up, E2E_TIMEOUT, echoUpstreamFor } from './up-harness.js';

/**
 * The Agent Proxy child dies (`kill -9`) and `tagbox up` restarts it. A turn
 * that starts meanwhile waits for it: a sandbox is never built without its
 * way out, and the message is not failed for it. (The same wait covers the
 * queued turns a restarted server runs before its proxy is up.)
 */
describe('turns across an Agent Proxy restart (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let echo: EchoUpstream;
  let up: Up;
  let owner: string;
  let generalId: string;

  beforeAll(async () => {
    const upstream = await echoUpstreamFor(['open.echo.test']);
    echo = upstream.echo;
    backend = await createTestBackend('sqlite');
    up = await startUp({ ...backend.env, ...upstream.env });
    owner = up.token!;
    generalId = (await webWorkspace(up, owner)).generalId;
    expect((await up.api(owner, 'PUT', '/bundles/open', { domains: ['open.echo.test'] })).status).toBe(200);
    expect((await up.api(owner, 'POST', '/bundles/open/scopes', { scope: `channel:${generalId}` })).status).toBe(200);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await echo?.close();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  async function turn(text: string) {
    const posted = await up.api(owner, 'POST', `/channels/${generalId}/messages`, { text });
    expect(posted.status, posted.text).toBe(202);
    const all = await readEvents(up, owner, posted.body.thread, answered(posted.body.message));
    return { thread: posted.body.thread as string, events: eventsOfTurn(all, turnOfMessage(all, posted.body.message)!) };
  }
  const healthz = async () => (await fetch(`${up.url}/healthz`).catch(() => undefined))?.status;

  it('a turn started while the proxy is down waits for it, then runs with the channel’s policy', async () => {
    const curl = 'curl -s -o /dev/null -w "%{http_code}" https://open.echo.test/ping';
    expect(agentTexts((await turn(curl)).events)).toEqual(['200\n[exit code 0]']);

    const proxy = processes().find((p) => p.pid === up.proxyPid)!;
    process.kill(proxy.pid, 'SIGKILL');
    await until('the proxy to be gone', () => (stillAlive(proxy) ? undefined : true));
    await until('/healthz to say the proxy is down', async () => ((await healthz()) === 503 ? true : undefined));

    // Posted while no proxy runs: answered once it is back.
    const fresh = await turn(curl);
    expect(systemTexts(fresh.events)).toEqual([]);
    expect(fresh.events.find((e) => e.event === 'done')?.data.status).toBe('done');
    expect(agentTexts(fresh.events)).toEqual(['200\n[exit code 0]']);
  });

  it('a thread whose sandbox was built before the restart reaches the proxy again (its sandbox is rebuilt, audited)', async () => {
    const curl = 'curl -s -o /dev/null -w "%{http_code}" https://open.echo.test/again';
    const first = await turn(curl);
    expect(agentTexts(first.events)).toEqual(['200\n[exit code 0]']);
    const proxyPid = await until('the proxy pid', async () =>
      (await healthz()) === 200 ? processes().find((p) => p.cmdline.includes('proxy-daemon') && p.ppid === up.launcher.pid) : undefined,
    );
    process.kill(proxyPid.pid, 'SIGKILL');
    await until('the proxy to be gone', () => (stillAlive(proxyPid) ? undefined : true));
    await until('the proxy back', async () => ((await healthz()) === 200 ? true : undefined));
    const posted = await up.api(owner, 'POST', `/channels/${generalId}/messages`, { text: curl, thread: first.thread });
    expect(posted.status, posted.text).toBe(202);
    const all = await readEvents(up, owner, first.thread, answered(posted.body.message));
    const again = eventsOfTurn(all, turnOfMessage(all, posted.body.message)!);
    expect(agentTexts(again)).toEqual(['200\n[exit code 0]']);
    const sandbox = (await up.api(owner, 'GET', `/audit?session=${first.thread}&type=sandbox`)).body.events.map((e: { action: string; reason?: string }) => `${e.action}${e.reason ? `:${e.reason}` : ''}`);
    expect(sandbox).toEqual(['create', 'release:proxy-restarted', 'rebuild']);
  });
});
