import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PluginAdmin } from '../../src/plugins/plugin-admin.js';
import { readPluginDir } from '../../src/plugins/read-plugin-dir.js';
import { pluginsForPlace } from '../../src/plugins/session-plugins.js';
import { putBudget } from '../../src/usage/budget-service.js';
import { creditEnvironment } from '../../src/sessions/turn-credit.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DISABLED_TOOL_NAMES } from '../../src/engines/claude/disabled-tools.js';
import { PLACEHOLDER_API_KEY } from '../../src/engines/claude/claude-engine.js';
import { CLAUDE_BINARY_INSIDE } from '../../src/engines/claude/claude-binary.js';
import { lastUserText, systemText, toolNames, toolResults, type FakeModelRequest } from '../fixtures/fake-anthropic.js';
import { agentTexts, systemTexts } from '../sessions/harness.js';

/** Every variable a turn's commands get from Tagbox (turn-credit.ts), with a credit that has an email. */
const TURN_VARIABLES = Object.keys(creditEnvironment({ name: 'n', email: 'e@x', place: '#p', thread: 't', branch: 'tagbox/t' }, 't'));
import { MODEL_KEY, startClaude, type ClaudeHarness } from './claude-harness.js';

/**
 * The `claude` engine end to end in this process's session layer: the real
 * binary in a real sandbox, its model traffic through the real proxy to the
 * fake Messages API, which scripts what the model says.
 */
describe('the claude engine (real binary, real sandbox, real proxy)', () => {
  let h: ClaudeHarness;
  beforeAll(async () => {
    // Where the server puts them: a directory the provider can mount from (as root, bwrap runs as another user).
    h = await startClaude('sqlite', {}, { pluginsFor: (session) => pluginsForPlace(h.store, session.place, h.provider.mountSourceDir('plugins')) });
    await h.proxy.secrets.put('echo-token', Buffer.from('echo-secret-value-91'));
    await h.access.putBundle('test', h.orgId, {
      name: 'echo',
      domains: [],
      connections: [{ name: 'echo', secret: 'echo-token', allowedWebsites: ['echo.test'], inject: { header: 'authorization', value: 'Bearer {{secret}}' } }],
    });
    await h.access.attach('test', h.orgId, 'echo', { kind: 'org' });
  }, 60_000);
  afterAll(async () => h?.close());
  beforeEach(() => h.model.reset());

  const messagesRequests = () => h.model.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages') && !r.path.includes('count_tokens'));

  it('runs a tool use in the sandbox: curl through a connection; the answer lands in the thread; the model got the vault key, the sandbox only a placeholder', async () => {
    h.model.script(
      { text: 'Let me look.', toolUse: { name: 'Bash', input: { command: 'curl -s https://echo.test/hello && echo && echo "key=$ANTHROPIC_API_KEY"' } } },
      (req) => ({ text: `The echo said: ${toolResults(req).at(-1)?.content.includes('/hello') ? 'it saw /hello' : 'nothing'}` }),
    );
    const r = await h.say('@tagbox please fetch the echo');
    const events = await h.untilDone(r.thread, 1, 90_000);
    const done = events.filter((e) => e.type === 'done').at(-1)!;
    expect(done.data.status, JSON.stringify(systemTexts(events))).toBe('done');
    expect(agentTexts(events)).toEqual(['The echo said: it saw /hello']);
    // Progress: the streamed text and the tool use, as it happened.
    const progress = events.filter((e) => e.type === 'progress').map((e) => e.data.text as string).join('');
    expect(progress).toContain('Let me look.');
    expect(progress).toContain('running `curl -s https://echo.test/hello');
    expect(events.some((e) => e.type === 'usage' && (e.data.outputTokens as number) > 0)).toBe(true);

    // The upstream got the connection's credential, injected by the proxy.
    const echoed = h.echo.received.find((x) => x.path === '/hello');
    expect(echoed?.headers.authorization).toBe('Bearer echo-secret-value-91');
    // Every model request carried the vault's key; what the sandbox holds is the placeholder.
    const calls = messagesRequests();
    expect(calls.length).toBe(2);
    for (const call of calls) expect(call.headers['x-api-key']).toBe(MODEL_KEY);
    const result = toolResults(calls[1]!).at(-1)!;
    expect(result.content).toContain(`key=${PLACEHOLDER_API_KEY}`);
    expect(result.content).not.toContain(MODEL_KEY);
    expect(calls[1]!.headers['x-api-key']).toBe(MODEL_KEY);
  }, 120_000);

  it('the sandbox never holds the model key: not in its environment, files or processes (searched from inside, while the engine runs)', async () => {
    // The pattern is put together at run time (in /dev/shm, not searched): no command line or transcript holds it whole.
    // Every file but the host's read-only /usr, which nothing of Tagbox's is written to (reading it cold is slow).
    const search = [
      "printf '%s%s' CANARY -model-key-7f3a > /dev/shm/p;",
      'for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr "\\0" "\\n" < "$f" 2>/dev/null; done | grep -c -f /dev/shm/p ;',
      'grep -rIl --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr -f /dev/shm/p / 2>/dev/null | head -5 ; echo "files-searched"',
    ].join(' ');
    // And from the host, while the engine process waits for this reply: its environment holds the placeholder only.
    let engineEnvs: string[] = [];
    h.model.script({ toolUse: { name: 'Bash', input: { command: search } } }, (req) => {
      engineEnvs = engineProcessEnvironments();
      return { text: `search: ${toolResults(req).at(-1)?.content ?? ''}` };
    });
    const r = await h.say('@tagbox look for secrets');
    const events = await h.untilDone(r.thread, 1, 90_000);
    const answer = agentTexts(events).at(-1)!;
    expect(answer).toMatch(/^search: 0\s+files-searched\b/);
    expect(engineEnvs.length).toBeGreaterThan(0);
    for (const env of engineEnvs) {
      expect(env).toContain(`ANTHROPIC_API_KEY=${PLACEHOLDER_API_KEY}`);
      expect(env).not.toContain(MODEL_KEY);
      // The turn's own variables (who asked, the thread's branch) are Tagbox's to give; nothing else of the host's.
      const rest = env.split(/[\n\0]/).filter((line) => !TURN_VARIABLES.some((name) => line.startsWith(`${name}=`)));
      expect(rest.join('\n')).not.toMatch(/TAGBOX_|DATABASE|PGPASSWORD/);
    }
  }, 120_000);

  it('offers the model no tool that leaves by another path or schedules work outside Tagbox', async () => {
    const r = await h.say('@tagbox hi');
    await h.untilDone(r.thread, 1, 90_000);
    const first = messagesRequests()[0]!;
    const offered = toolNames(first);
    expect(offered).toContain('Bash');
    for (const name of DISABLED_TOOL_NAMES) expect(offered).not.toContain(name);
    // Deferred tools are listed by name in the conversation for ToolSearch: none of those either.
    const body = JSON.stringify(first.body);
    for (const name of ['WebSearch', 'WebFetch', 'CronCreate', 'ScheduleWakeup', 'RemoteTrigger', 'PushNotification']) expect(body).not.toMatch(new RegExp(`\\b${name}\\b`));
    // Settings files are ignored and the model is the configured one.
    expect(first.body.model).toBe('claude-sonnet-4-5');
    // What the pinned engine calls, all of it (the model connection is narrowed to this).
    const called = [...new Set(h.model.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`))].sort();
    expect(called).toEqual(['GET /api/claude_code/policy_limits', 'GET /api/claude_code/settings', 'POST /v1/messages']);
    // Each with the org's key, injected by the proxy.
    for (const request of h.model.requests) expect(request.headers["x-api-key"], `${request.method} ${request.path}`).toBe(MODEL_KEY);
  }, 120_000);

  it("appends the org's, then the channel's instructions to the system prompt", async () => {
    await h.access.updateOrgSettings('test', h.orgId, { instructions: 'ORG-RULE: answer in French.' });
    const eng = await h.channel('eng-instructions');
    await h.store.db.updateTable('channels').set({ instructions: 'CHANNEL-RULE: mention the runbook.' }).where('id', '=', eng).execute();
    try {
      const r = await h.say('@tagbox hello', { place: { kind: 'channel', channelId: eng } });
      await h.untilDone(r.thread, 1, 90_000);
      const system = systemText(messagesRequests()[0]!);
      expect(system).toContain('#eng-instructions');
      const org = system.indexOf('ORG-RULE: answer in French.');
      const channel = system.indexOf('CHANNEL-RULE: mention the runbook.');
      expect(org).toBeGreaterThan(0);
      expect(channel).toBeGreaterThan(org);
    } finally {
      await h.access.updateOrgSettings('test', h.orgId, { instructions: '' });
    }
  }, 120_000);

  it("memory written in one session is in the next session's system prompt (the channel's file, copied across)", async () => {
    const ops = await h.channel('ops-memory');
    h.model.script({ toolUse: { name: 'Bash', input: { command: 'echo "deploys need a ticket" >> ~/.tagbox/memory.md' } } }, { text: 'Remembered.' });
    const first = await h.say('@tagbox remember: deploys need a ticket', { place: { kind: 'channel', channelId: ops } });
    await h.untilDone(first.thread, 1, 90_000);
    const second = await h.say('@tagbox what do you know?', { place: { kind: 'channel', channelId: ops } });
    await h.untilDone(second.thread, 1, 90_000);
    expect(second.thread).not.toBe(first.thread);
    const system = systemText(messagesRequests().at(-1)!);
    expect(system).toContain('/home/agent/.tagbox/memory.md');
    expect(system).toContain('<memory>\ndeploys need a ticket\n</memory>');
    // Another channel's session does not see it.
    const r = await h.say('@tagbox hi');
    await h.untilDone(r.thread, 1, 90_000);
    expect(systemText(messagesRequests().at(-1)!)).not.toContain('deploys need a ticket');
  }, 180_000);

  it("a plugin attached to the channel is mounted read-only and its skill is offered to the engine", async () => {
    const channel = await h.channel('plugins-chan');
    const file = (path: string, text: string) => ({ path, mode: 0o644 as const, data: Buffer.from(text) });
    const plugins = new PluginAdmin(h.store, h.audit);
    await plugins.add('test', h.orgId, 'release-kit', [
      file('.claude-plugin/plugin.json', JSON.stringify({ name: 'release-kit', version: '1.0.0', description: 'release helpers' })),
      file('skills/cut-release/SKILL.md', '---\nname: cut-release\ndescription: Cuts a release branch and writes the changelog (zebra-7731)\n---\nRun the release steps.\n'),
    ]);
    await plugins.attach('test', h.orgId, 'release-kit', { kind: 'channel', id: channel });
    h.model.script({ toolUse: { name: 'Bash', input: { command: 'cat /opt/tagbox/plugins/release-kit/skills/cut-release/SKILL.md | head -3; touch /opt/tagbox/plugins/release-kit/x 2>&1 | head -1' } } }, (req) => ({
      text: `saw: ${toolResults(req).at(-1)?.content ?? ''}`,
    }));
    const r = await h.say('@tagbox cut a release', { place: { kind: 'channel', channelId: channel } });
    const events = await h.untilDone(r.thread, 1, 90_000);
    expect(messagesRequests().length, JSON.stringify(events.map((e) => e.data))).toBe(2);
    const first = messagesRequests().at(-2)!;
    // The skill is announced to the model (name and description), as the engine lists skills.
    expect(JSON.stringify(first.body)).toContain('zebra-7731');
    expect(JSON.stringify(first.body)).toContain('cut-release');
    const answer = agentTexts(events).at(-1)!;
    expect(answer).toContain('name: cut-release');
    expect(answer).toMatch(/Read-only file system/);
    // A channel without it does not get it.
    const other = await h.say('@tagbox hi');
    await h.untilDone(other.thread, 1, 90_000);
    expect(JSON.stringify(messagesRequests().at(-1)!.body)).not.toContain('zebra-7731');
  }, 180_000);

  it("a plugin's MCP server runs inside the sandbox: its requests go through the proxy and obey the policy", async () => {
    const channel = await h.channel('mcp-chan');
    const plugins = new PluginAdmin(h.store, h.audit);
    await plugins.add('test', h.orgId, 'netcheck', await readPluginDir(fileURLToPath(new URL('../fixtures/plugins/netcheck', import.meta.url))));
    await plugins.attach('test', h.orgId, 'netcheck', { kind: 'channel', id: channel });
    // The engine offers a plugin's MCP tools as deferred tools: loaded with ToolSearch, then called.
    const probe = 'mcp__plugin_netcheck_netcheck__probe';
    h.model.script(
      { toolUse: { name: 'ToolSearch', input: { query: `select:${probe}` } } },
      { toolUse: { name: probe, input: { url: 'https://echo.test/from-mcp' } } },
      { toolUse: { name: probe, input: { url: 'https://not-allowed.example/x' } } },
      (req) => ({ text: `results: ${toolResults(req).slice(-2).map((r) => r.content.replace(/\s+/g, ' ')).join(' | ')}` }),
    );
    const r = await h.say('@tagbox probe', { place: { kind: 'channel', channelId: channel } });
    const events = await h.untilDone(r.thread, 1, 120_000);
    const answer = agentTexts(events).at(-1) ?? JSON.stringify(events.map((e) => e.data));
    expect(answer).toContain('"path":"/from-mcp"');
    expect(answer).toContain('http=200');
    // The blocked one: the proxy refused its tunnel, and the thread says which host was blocked.
    expect(answer).toMatch(/http=000 curl: \(56\) CONNECT tunnel failed, response 403/);
    expect(events.some((e) => e.type === 'notice' && String(e.data.text).startsWith('Blocked a request to not-allowed.example'))).toBe(true);
    // The allowed request went out with the channel's credential, injected by the proxy, not by the plugin.
    expect(h.echo.received.find((x) => x.path === '/from-mcp')?.headers.authorization).toBe('Bearer echo-secret-value-91');
  }, 180_000);

  it('a released sandbox resumes the conversation: the next model request carries the earlier turns', async () => {
    h.model.script({ text: 'Noted: the word is kiwi.' });
    const first = await h.say('@tagbox remember the word kiwi');
    await h.untilDone(first.thread, 1, 90_000);
    await h.layer.sandboxes.release(first.thread);
    h.model.script((req: FakeModelRequest) => ({ text: `history has ${JSON.stringify(req.body.messages).includes('Noted: the word is kiwi.') ? 'the earlier answer' : 'nothing'}` }));
    await h.say('@tagbox what was the word?', { threadKey: first.thread, mustExist: true });
    const events = await h.untilDone(first.thread, 2, 90_000);
    expect(agentTexts(events)).toEqual(['Noted: the word is kiwi.', 'history has the earlier answer']);
    const last = messagesRequests().at(-1)!;
    expect(JSON.stringify(last.body.messages)).toContain('remember the word kiwi');
    expect(lastUserText(last)).toContain('what was the word?');
    // The audit says the sandbox was rebuilt with the engine's state restored.
    const rebuilt = await h.store.db.selectFrom('audit_events').select('data').where('session_id', '=', first.thread).where('type', '=', 'sandbox').execute();
    expect(rebuilt.map((row) => JSON.parse(row.data as string) as Record<string, unknown>).some((d) => d.action === 'rebuild' && d.restoredState === true)).toBe(true);
  }, 180_000);

  it('a message that arrives while a turn runs joins it through the streaming input', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    h.model.script(
      async () => {
        await held;
        return { text: 'first answer' };
      },
      (req) => ({ text: `second answer to: ${lastUserText(req).includes('and also this') ? 'the joined message' : 'something else'}` }),
    );
    const first = await h.say('@tagbox start something');
    await h.until('the first model request', async () => messagesRequests().length >= 1 || undefined, 60_000);
    const second = await h.say('@tagbox and also this', { threadKey: first.thread, mustExist: true });
    release();
    const events = await h.untilDone(first.thread, 2, 90_000);
    expect(agentTexts(events)).toEqual(['first answer', 'second answer to: the joined message']);
    const dones = events.filter((e) => e.type === 'done').map((e) => e.data);
    expect(dones).toEqual([
      { turn: second.turn, status: 'joined', into: first.turn },
      { turn: first.turn, status: 'done' },
    ]);
    expect(messagesRequests().length).toBe(2);
  }, 120_000);

  it('tagged mid-thread, the earlier messages the surface supplied are given as context', async () => {
    const r = await h.say('@tagbox what do you think?', {
      threadKey: `slack-ts-${Date.now()}`,
      context: [
        { author: { name: 'Ada' }, text: 'the deploy failed at step 3' },
        { author: { name: 'Bob' }, text: 'it was the migration' },
      ],
    });
    await h.untilDone(r.thread, 1, 90_000);
    expect(lastUserText(messagesRequests()[0]!)).toContain('Earlier in this thread (for context):\nAda: the deploy failed at step 3\nBob: it was the migration\n\nOwner: what do you think?');
    // Kept with the thread (marked), and not again for a later message of the same thread.
    const stored = await h.store.db.selectFrom('messages').select(['text', 'context']).where('session_id', '=', r.thread).orderBy('created_at').execute();
    expect(stored.filter((m) => m.context === 1).map((m) => m.text)).toEqual(['the deploy failed at step 3', 'it was the migration']);
  }, 120_000);

  it('usage is metered at the proxy against the right payer; a spent budget blocks the next model request, and the thread says so', async () => {
    const budgeted = await h.channel('budgeted');
    h.model.script({ text: 'one', usage: { input_tokens: 400, output_tokens: 100, cache_read_input_tokens: 7 } });
    const first = await h.say('@tagbox hello', { place: { kind: 'channel', channelId: budgeted } });
    await h.untilDone(first.thread, 1, 90_000);
    // Written by the proxy as the response passed (batched: wait for it).
    const usage = await h.until('the usage event', async () => (await h.store.db.selectFrom('usage_events').selectAll().where('session_id', '=', first.thread).execute())[0]);
    expect(usage).toMatchObject({ payer_kind: 'org', payer_id: h.orgId, channel_id: budgeted, member_id: null, model: 'claude-sonnet-4-5' });
    expect([Number(usage.input_tokens), Number(usage.output_tokens), Number(usage.cache_read_tokens)]).toEqual([400, 100, 7]);

    // A DM's usage is the member's.
    const ada = await h.member('Ada-usage');
    const dm = await h.say('@tagbox hi', { by: ada, place: { kind: 'dm', memberId: ada.id } });
    await h.untilDone(dm.thread, 1, 90_000);
    const dmUsage = await h.until('the DM usage event', async () => (await h.store.db.selectFrom('usage_events').selectAll().where('session_id', '=', dm.thread).execute())[0]);
    expect(dmUsage).toMatchObject({ payer_kind: 'member', payer_id: ada.id, member_id: ada.id, channel_id: null });

    // 500 tokens today in #budgeted; a budget of 500 is spent: the next model request is never sent.
    await putBudget(h.store, h.audit, 'test', { orgId: h.orgId, scope: { kind: 'channel', id: budgeted }, period: 'day', unit: 'tokens', limit: 500 });
    // The proxy keeps an org's list of budgets for up to a second (USAGE.md: a new budget applies within 1 s).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const sent = messagesRequests().length;
    const second = await h.say('@tagbox again', { place: { kind: 'channel', channelId: budgeted } });
    const events = await h.untilDone(second.thread, 1, 90_000);
    expect(messagesRequests().length).toBe(sent);
    expect(events.filter((e) => e.type === 'done').at(-1)!.data.status).toBe('failed');
    const notices = events.filter((e) => e.type === 'notice').map((e) => e.data.text as string);
    expect(notices).toContain('The budget for #budgeted is spent for today; an admin can raise it.');
    expect(systemTexts(events).at(-1)).toMatch(/^The turn failed: .*the budget for #budgeted is spent for today/i);
    // Another channel is not held by #budgeted's budget.
    const elsewhere = await h.say('@tagbox still there?');
    expect((await h.untilDone(elsewhere.thread, 1, 90_000)).filter((e) => e.type === 'done').at(-1)!.data.status).toBe('done');
  }, 180_000);

  it('a model error fails the turn and the thread says why', async () => {
    h.model.script({ status: 400, error: { type: 'invalid_request_error', message: 'prompt is too long: 999999 tokens' }, headers: { 'x-should-retry': 'false' } });
    const r = await h.say('@tagbox hello');
    const events = await h.untilDone(r.thread, 1, 90_000);
    expect(events.filter((e) => e.type === 'done').at(-1)!.data.status).toBe('failed');
    expect(systemTexts(events).at(-1)).toMatch(/^The turn failed: .*prompt is too long/i);
  }, 120_000);

  it('agent.maxTurns bounds the model turns of one invocation', async () => {
    h.model.fallback = { toolUse: { name: 'Bash', input: { command: 'true' } } };
    const r = await h.say('@tagbox loop forever');
    const events = await h.untilDone(r.thread, 1, 120_000);
    expect(systemTexts(events).at(-1)).toMatch(/stopped after \d+ model turns \(agent\.maxTurns\)/);
    expect(messagesRequests().length).toBeLessThanOrEqual(8);
  }, 150_000);
});

/** The environments of the engine processes running in any sandbox on this host (read from the host's /proc). */
function engineProcessEnvironments(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`${CLAUDE_BINARY_INSIDE}\0`)) continue;
      found.push(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').join('\n'));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
