import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { startFakeAnthropic, toolResults, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { agentTexts, answered, eventsOfTurn, readEvents, startUp, turnOfMessage, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * Issue 11, "Done when" 1, through the real `tagbox up` (privilege separation
 * when root; a sandbox uid of its own when not): a channel message -> the
 * `claude` engine (the real bundled binary) in a sandbox -> the fake model asks
 * for a Bash command that curls an allowed host through a connection -> the
 * answer is posted in the thread. The fake model received the vault's key;
 * the sandbox's environment, files and processes never held it.
 */
describe.each(BACKENDS)('tagbox up with the claude engine (%s)', { timeout: E2E_TIMEOUT }, (backendName) => {
  let backend: TestBackend;
  let model: FakeAnthropic;
  let echo: EchoUpstream;
  let up: Up;
  let owner: string;
  let generalId: string;
  const modelKey = `sk-ant-api03-${randomBytes(18).toString('hex')}`;
  const channelSecret = `chan-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    const ca = await createTestCa();
    // The proxy runs as tagbox-proxy under privilege separation: it must read the upstream CA.
    chmodSync(dirname(ca.certFile), 0o755);
    model = await startFakeAnthropic({ ca, apiKey: modelKey });
    echo = await startEchoUpstream({ ca });
    backend = await createTestBackend(backendName);
    up = await startUp({
      ...backend.env,
      TAGBOX_AGENT_MODEL_SECRET: 'anthropic-key',
      TAGBOX_UPSTREAM_CONNECT_TO: [model.connectTo, `chan.echo.test:443:127.0.0.1:${echo.httpsPort}`].join(','),
      TAGBOX_UPSTREAM_CA_FILE: ca.certFile,
    });
    owner = up.token!;
    generalId = (await webWorkspace(up, owner)).generalId;
    expect((await up.api(owner, 'PUT', '/secrets/anthropic-key', { value: modelKey })).status).toBe(200);
    expect((await up.api(owner, 'PUT', '/secrets/chan-token', { value: channelSecret })).status).toBe(200);
    const bundle = await up.api(owner, 'PUT', '/bundles/general-eng', {
      connections: [{ name: 'chan', secret: 'chan-token', allowedWebsites: ['chan.echo.test'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } }],
    });
    expect(bundle.status, bundle.text).toBe(200);
    expect((await up.api(owner, 'POST', '/bundles/general-eng/scopes', { scope: `channel:${generalId}` })).status).toBe(200);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await model?.close();
    await echo?.close();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  async function ask(text: string, thread?: string) {
    const posted = await up.api(owner, 'POST', `/channels/${generalId}/messages`, { text, ...(thread ? { thread } : {}) });
    expect(posted.status, posted.text).toBe(202);
    const all = await readEvents(up, owner, posted.body.thread as string, answered(posted.body.message));
    const events = eventsOfTurn(all, turnOfMessage(all, posted.body.message)!);
    return { thread: posted.body.thread as string, events, reply: agentTexts(events).join('\n'), done: events.find((e) => e.event === 'done')!.data };
  }

  it('answers in the thread after a tool use that went through a connection; the key stays with the proxy', async () => {
    model.script(
      { text: 'Fetching.', toolUse: { name: 'Bash', input: { command: 'curl -s https://chan.echo.test/e2e-claude' } } },
      (req) => ({ text: `fetched: ${toolResults(req).at(-1)?.content.includes('/e2e-claude') ? 'yes' : 'no'}` }),
    );
    const turn = await ask('@tagbox fetch the thing');
    expect(turn.done.status, JSON.stringify(turn.events.map((e) => e.data))).toBe('done');
    expect(turn.reply).toBe('fetched: yes');
    expect(turn.events.some((e) => e.event === 'progress' && String(e.data.text).includes('running `curl -s https://chan.echo.test/e2e-claude`'))).toBe(true);
    const thread = await up.api(owner, 'GET', `/threads/${turn.thread}`);
    expect(thread.body.session.engine).toBe('claude');
    expect(echo.received.find((r) => r.path === '/e2e-claude')?.headers.authorization).toBe(`Bearer ${channelSecret}`);
    const calls = model.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages'));
    expect(calls.length).toBe(2);
    for (const call of calls) expect(call.headers['x-api-key']).toBe(modelKey);

    // Searched from inside: every environment and command line it can see, every file it can read but the host's
    // read-only /usr (gigabytes nothing of Tagbox's is written to; reading it cold outran the wait in CI).
    const half = Math.floor(modelKey.length / 2);
    const search = [
      `printf '%s%s' '${modelKey.slice(0, half)}' '${modelKey.slice(half)}' > /dev/shm/p;`,
      'env | grep -c -f /dev/shm/p;',
      'for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f" 2>/dev/null; done | grep -c -f /dev/shm/p;',
      'grep -rIl --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr -f /dev/shm/p / 2>/dev/null | head -5; echo searched',
    ].join(' ');
    model.script({ toolUse: { name: 'Bash', input: { command: search } } }, (req) => ({ text: `search: ${toolResults(req).at(-1)?.content ?? ''}` }));
    const searched = await ask('@tagbox search', turn.thread);
    expect(searched.reply).toMatch(/^search: 0\s+0\s+searched\b/);
    for (const call of model.requests) expect(JSON.stringify(call.body ?? '')).not.toContain(modelKey);
  });
});
