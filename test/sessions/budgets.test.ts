import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { putBudget } from '../../src/usage/budget-service.js';
import { usageOfSession } from '../../src/usage/usage-repo.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { BACKENDS } from '../helpers/backends.js';
import { BIG_INPUT, SSE_USAGE, startFakeMessagesApi, type FakeMessagesApi } from '../usage/fake-messages-api.js';
import { agentTexts, startSessions, type SessionHarness } from './harness.js';

/**
 * Usage and budgets through the whole spine: a message in #general runs curl
 * in a real sandbox, whose requests to api.anthropic.com go through the real
 * proxy daemon (a listener it opened for the channel or the DM, metered
 * against the org and that place) to a fake Messages API. The daemon
 * attributes usage itself; a spent budget refuses the next model request with
 * its reason, and the thread says so in those words.
 */
describe.each(BACKENDS)('model usage and budgets in threads (%s)', (name) => {
  let h: SessionHarness;
  let ca: TestCa;
  let api: FakeMessagesApi;
  const model = (scenario: string) => `curl -s -o /dev/null -w "%{http_code} " -X POST -H "content-type: application/json" -d '{}' "https://api.anthropic.com/v1/messages?s=${scenario}"`;

  beforeAll(async () => {
    ca = await createTestCa('Fake Messages API CA');
    api = await startFakeMessagesApi(ca);
    h = await startSessions(name, {}, [], { daemonEnv: { TAGBOX_UPSTREAM_CONNECT_TO: `api.anthropic.com:443:127.0.0.1:${api.port}`, TAGBOX_UPSTREAM_CA_FILE: ca.certFile } });
    await h.access.putBundle('test', h.orgId, { name: 'model', domains: [{ host: 'api.anthropic.com' }], connections: [] });
    await h.access.attach('test', h.orgId, 'model', { kind: 'channel', id: h.channelId });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('meters channel work against the org and #general, and a spent budget is told in the thread in its own words', async () => {
    await putBudget(h.store, h.audit, 'test', { orgId: h.orgId, scope: { kind: 'channel', id: h.channelId }, period: 'day', unit: 'tokens', limit: BIG_INPUT });
    const sent = api.received.length;
    const { thread } = await h.say(`${model('big')}; ${model('sse')}; curl -s -X POST -d '{}' https://api.anthropic.com/v1/messages; echo`);
    const events = await h.untilDone(thread);
    const reply = agentTexts(events).join('\n');
    // The first was sent (and crossed the limit); the next two were refused before they left.
    expect(reply).toMatch(/^200 403 /);
    expect(reply).toContain('{"type":"error","error":{"type":"permission_error","message":"Tagbox: the budget for #general is spent for today; an admin can raise it"}}');
    expect(api.received.length).toBe(sent + 1);
    const notice = await h.until('the budget notice', async () => (await h.events(thread)).find((e) => e.type === 'notice'), 10_000);
    expect(notice.data).toMatchObject({ kind: 'budget', scope: 'channel', period: 'day', text: 'The budget for #general is spent for today; an admin can raise it.' });
    // One notice for the spent budget, however many requests it refused.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await h.events(thread)).filter((e) => e.type === 'notice')).toHaveLength(1);
    const usage = await usageOfSession(h.store.db, thread);
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ orgId: h.orgId, place: { kind: 'channel', channelId: h.channelId }, inputTokens: BIG_INPUT, outputTokens: SSE_USAGE.outputTokens });
    const payer = await h.store.db.selectFrom('usage_events').select(['payer_kind', 'payer_id']).where('session_id', '=', thread).executeTakeFirstOrThrow();
    expect(payer).toEqual({ payer_kind: 'org', payer_id: h.orgId });
  });

  it("meters DM work against the member who pays, and their budget is 'your budget'", async () => {
    const member = h.owner.id;
    await h.access.putPersonalConnector('test', h.orgId, member, { name: 'anthropic', allowedWebsites: ['api.anthropic.com'], inject: { header: 'x-api-key', value: '{{secret}}' } });
    await h.proxy.secrets.put(personalSecretName(member, 'anthropic'), Buffer.from('sk-member-key'));
    await putBudget(h.store, h.audit, 'test', { orgId: h.orgId, scope: { kind: 'member', id: member }, period: 'month', unit: 'cost', limit: 1 });
    // The proxy reads an org's budgets at most a second old: a new one holds from then on.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const result = await h.layer.service.invoke({ workspaceId: h.workspaceId, place: { kind: 'dm', memberId: member }, memberId: member, text: `${model('json')}; ${model('json')}; echo`, trigger: 'message' });
    if (result.status !== 'accepted') throw new Error(result.message);
    const events = await h.untilDone(result.thread);
    expect(agentTexts(events).join('\n')).toMatch(/^200 403 /);
    // The member's own key went to the model host, injected at the proxy.
    expect(api.received.at(-1)!.headers['x-api-key']).toBe('sk-member-key');
    const notice = await h.until('the budget notice', async () => (await h.events(result.thread)).find((e) => e.type === 'notice'), 10_000);
    expect(notice.data.text).toBe('Your budget is spent for this month; an admin can raise it.');
    const usage = await usageOfSession(h.store.db, result.thread);
    expect(usage.map((u) => u.place)).toEqual([{ kind: 'dm', memberId: member }]);
    const payer = await h.store.db.selectFrom('usage_events').select(['payer_kind', 'payer_id']).where('session_id', '=', result.thread).executeTakeFirstOrThrow();
    expect(payer).toEqual({ payer_kind: 'member', payer_id: member });
  });
});
