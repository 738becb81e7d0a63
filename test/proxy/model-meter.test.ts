import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { AuditLog } from '../../src/audit/log.js';
import { AgentProxy, type ProxyListener } from '../../src/proxy/agent-proxy.js';
import type { BlockedEvent } from '../../src/proxy/blocked-event.js';
import { parseConnectTo } from '../../src/proxy/connect-to.js';
import { ModelMeter, type UsageContext } from '../../src/proxy/model-meter.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/tls/certificates.js';
import { upsertBudget } from '../../src/usage/budgets-repo.js';
import { costMicroUsd, priceFor, priceTable } from '../../src/usage/prices.js';
import { usageOfSession, type UsageEvent } from '../../src/usage/usage-repo.js';
import { MAX_TOKENS } from '../../src/usage/usage-tap.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { BIG_INPUT, JSON_USAGE, SSE_USAGE, startFakeMessagesApi, type FakeMessagesApi } from '../usage/fake-messages-api.js';
import { policyOf, statusOf, tlsThroughConnect } from './harness.js';

/**
 * The model meter in the real Agent Proxy: real TLS interception, a real
 * HTTPS Messages API upstream on loopback (reached as api.anthropic.com by
 * connect-to), the real store. Usage is attributed by the listener (a
 * channel's to the org, a DM's to the member); a spent budget refuses the
 * next model request before it is sent, as the Messages API would refuse it,
 * and tells the blocked feed; other hosts are not touched; the stream is
 * passed on as it comes.
 */
const BUNDLES = 'bundles:\n  - name: model\n    domains: [api.anthropic.com, echo.test]\n';
const BUDGETS_TTL_MS = 50;

describe.each(BACKENDS)('the model meter (%s)', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;
  let audit: AuditLog;
  let upstreamCa: TestCa;
  let deployCa: CertificateAuthority;
  let api: FakeMessagesApi;
  let proxy: AgentProxy;
  let orgId: string;
  let engId: string;
  let aliceId: string;
  const blocked: BlockedEvent[] = [];
  const listeners: Record<string, { listener: ProxyListener; agent: ProxyAgent; session: string }> = {};
  let sessionSeq = 0;

  beforeAll(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
    audit = new AuditLog(store);
    orgId = (await createOrg(store.db, 'Acme')).id;
    const ws = await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'web' });
    engId = (await createChannel(store.db, { workspaceId: ws.id, externalId: 'eng', name: 'eng' })).id;
    aliceId = (await createMember(store.db, { workspaceId: ws.id, externalId: 'alice', displayName: 'Alice' })).id;
    upstreamCa = await createTestCa('Fake Messages API CA');
    deployCa = await createCertificateAuthority({ commonName: 'Meter Test Deployment CA', validDays: 1 });
    api = await startFakeMessagesApi(upstreamCa);
    proxy = new AgentProxy({
      ca: deployCa,
      audit,
      upstream: { connectTo: parseConnectTo([`api.anthropic.com:443:127.0.0.1:${api.port}`, `echo.test:443:127.0.0.1:${api.port}`]), extraCaPem: upstreamCa.certPem },
      // Budgets are read at most BUDGETS_TTL_MS old (a second in production); a test that adds or lowers one waits that long.
      meter: new ModelMeter({ store, prices: priceTable(), budgetsTtlMs: BUDGETS_TTL_MS }),
      onBlocked: (e) => blocked.push(e),
    });
    await open('eng', { orgId, place: { kind: 'channel', channelId: engId } });
    await open('alice', { orgId, place: { kind: 'dm', memberId: aliceId } });
    await open('plain');
  });
  afterAll(async () => {
    for (const l of Object.values(listeners)) await l.agent.close();
    await proxy?.close();
    await api?.close();
    await store?.close();
    await backend?.cleanup();
  });

  async function open(name: string, usage?: UsageContext, on: AgentProxy = proxy) {
    const session = `sess-${name}`;
    const listener = await on.listen({ host: '127.0.0.1', port: 0 }, { session, policy: policyOf(BUNDLES), ...(usage ? { usage } : {}) });
    listeners[name] = { listener, session, agent: new ProxyAgent({ uri: `http://127.0.0.1:${listener.port}`, requestTls: { ca: deployCa.certPem } }) };
    return session;
  }

  /** A Messages API call through one listener; the answer's status, headers and body. */
  async function call(via: string, scenario = 'sse', host = 'api.anthropic.com') {
    const res = await request(`https://${host}/v1/messages?s=${scenario}`, {
      method: 'POST',
      dispatcher: listeners[via]!.agent,
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br', 'x-api-key': 'placeholder' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, stream: scenario !== 'json', messages: [{ role: 'user', content: 'hi' }] }),
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  }

  /** Usage rows of a session, once `count` are committed. */
  async function usageOf(session: string, count: number): Promise<UsageEvent[]> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const rows = await usageOfSession(store.db, session);
      if (rows.length >= count || Date.now() > deadline) return rows;
      await sleep(20);
    }
  }

  async function egressEvents(filter: (e: AuditEvent) => boolean, count: number): Promise<AuditEvent[]> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const out: AuditEvent[] = [];
      for await (const e of audit.query({ type: 'egress' })) if (filter(e)) out.push(e);
      if (out.length >= count || Date.now() > deadline) return out;
      await sleep(20);
    }
  }

  /** A fresh channel (and listener) per budget test, so that budgets and spend of one test do not meet another's. */
  async function freshChannel(name: string, on: AgentProxy = proxy) {
    const ws = await store.db.selectFrom('workspaces').select('id').where('org_id', '=', orgId).executeTakeFirstOrThrow();
    sessionSeq += 1;
    const channelId = (await createChannel(store.db, { workspaceId: ws.id, externalId: `${name}-${sessionSeq}`, name })).id;
    const key = `${name}-${sessionSeq}`;
    const session = await open(key, { orgId, place: { kind: 'channel', channelId } }, on);
    return { channelId, session, key };
  }

  it('records a streamed answer of a channel listener against the org and the channel, with its cost, on the egress event too', async () => {
    const answer = await call('eng');
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('event: message_stop');
    const [row] = await usageOf('sess-eng', 1);
    const cost = costMicroUsd(SSE_USAGE, priceFor(priceTable(), SSE_USAGE.model).price);
    expect(row).toMatchObject({ orgId, place: { kind: 'channel', channelId: engId }, ...SSE_USAGE, cost });
    const payer = await store.db.selectFrom('usage_events').select(['payer_kind', 'payer_id']).where('id', '=', row!.id).executeTakeFirstOrThrow();
    expect(payer).toEqual({ payer_kind: 'org', payer_id: orgId });
    // The meter asked for an answer it can read as it passes.
    expect(api.received.at(-1)!.headers['accept-encoding']).toBe('identity');
    const [event] = await egressEvents((e) => e.session === 'sess-eng' && e.host === 'api.anthropic.com', 1);
    expect(event).toMatchObject({ outcome: 'allowlist', status: 200, usage: { ...SSE_USAGE, costMicroUsd: cost } });
  });

  it('records a JSON answer of a DM listener against the member who pays', async () => {
    expect((await call('alice', 'json')).status).toBe(200);
    const [row] = await usageOf('sess-alice', 1);
    expect(row).toMatchObject({ orgId, place: { kind: 'dm', memberId: aliceId }, ...JSON_USAGE });
    const payer = await store.db.selectFrom('usage_events').select(['payer_kind', 'payer_id', 'channel_id']).where('id', '=', row!.id).executeTakeFirstOrThrow();
    expect(payer).toEqual({ payer_kind: 'member', payer_id: aliceId, channel_id: null });
  });

  it('meters nothing on a listener without a usage context, nor any host but the model host', async () => {
    expect((await call('plain')).status).toBe(200);
    expect((await call('eng', 'sse', 'echo.test')).status).toBe(200);
    expect(api.received.at(-1)!.headers['accept-encoding']).toBe('gzip, br');
    await sleep(200);
    expect(await usageOfSession(store.db, 'sess-plain')).toEqual([]);
    expect(await usageOfSession(store.db, 'sess-eng')).toHaveLength(1);
  });

  it('a spent budget refuses the next model request before it is sent, as the API would, and tells the feed; other hosts go on; a raised budget lets the next one through', async () => {
    const { channelId, session, key } = await freshChannel('eng');
    const budget = await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: channelId }, period: 'day', unit: 'tokens', limit: BIG_INPUT, updatedBy: 'test' });
    await sleep(2 * BUDGETS_TTL_MS);
    // Under the limit: sent. This answer crosses it (it could not be known before it was answered).
    expect((await call(key, 'big')).status).toBe(200);
    const sent = api.received.length;
    const refused = await call(key);
    expect(refused.status).toBe(403);
    expect(refused.headers['x-tagbox-decision']).toBe('blocked');
    expect(refused.headers['content-type']).toBe('application/json');
    expect(JSON.parse(refused.text)).toEqual({ type: 'error', error: { type: 'permission_error', message: 'Tagbox: the budget for #eng is spent for today; an admin can raise it' } });
    expect(api.received.length).toBe(sent);
    // Told to the server's feed, budget and all, and audited as a blocked egress with that reason.
    expect(blocked.find((e) => e.session === session)).toMatchObject({ host: 'api.anthropic.com', reason: 'the budget for #eng is spent for today; an admin can raise it', budget: { scope: 'channel', period: 'day' } });
    const [event] = await egressEvents((e) => e.session === session && e.outcome === 'blocked', 1);
    const spent = BIG_INPUT + SSE_USAGE.outputTokens + SSE_USAGE.cacheReadTokens + SSE_USAGE.cacheCreationTokens;
    expect(event).toMatchObject({ status: 403, reason: 'the budget for #eng is spent for today; an admin can raise it', budget: { id: budget.budget.id, scope: 'channel', scopeId: channelId, period: 'day', unit: 'tokens', limit: BIG_INPUT, spent } });
    // Other hosts are unaffected.
    expect((await call(key, 'sse', 'echo.test')).status).toBe(200);
    // A raised budget takes effect on the next request.
    await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: channelId }, period: 'day', unit: 'tokens', limit: spent * 10, updatedBy: 'test' });
    expect((await call(key)).status).toBe(200);
    expect(await usageOf(session, 2)).toHaveLength(2);
  });

  it('a raised budget lets the very next request through, however long budgets are cached', async () => {
    const patient = new AgentProxy({
      ca: deployCa,
      audit,
      upstream: { connectTo: parseConnectTo([`api.anthropic.com:443:127.0.0.1:${api.port}`]), extraCaPem: upstreamCa.certPem },
      meter: new ModelMeter({ store, prices: priceTable(), budgetsTtlMs: 600_000 }),
    });
    try {
      const ws = await store.db.selectFrom('workspaces').select('id').where('org_id', '=', orgId).executeTakeFirstOrThrow();
      const channelId = (await createChannel(store.db, { workspaceId: ws.id, externalId: 'patient', name: 'patient' })).id;
      await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: channelId }, period: 'day', unit: 'tokens', limit: 1, updatedBy: 'test' });
      await open('patient', { orgId, place: { kind: 'channel', channelId } }, patient);
      expect((await call('patient')).status).toBe(200);
      expect((await call('patient')).status).toBe(403);
      await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: channelId }, period: 'day', unit: 'tokens', limit: 1e9, updatedBy: 'test' });
      expect((await call('patient')).status).toBe(200);
    } finally {
      await listeners.patient?.agent.close();
      delete listeners.patient;
      await patient.close();
    }
  });

  it("holds DM work to the member's budget and the org's, by cost and by month, and says whose", async () => {
    const ws = await store.db.selectFrom('workspaces').select('id').where('org_id', '=', orgId).executeTakeFirstOrThrow();
    const bob = (await createMember(store.db, { workspaceId: ws.id, externalId: 'bob', displayName: 'Bob' })).id;
    await open('bob', { orgId, place: { kind: 'dm', memberId: bob } });
    const member = await upsertBudget(store.db, { orgId, scope: { kind: 'member', id: bob }, period: 'month', unit: 'cost', limit: 1, updatedBy: 'test' });
    await sleep(2 * BUDGETS_TTL_MS);
    expect((await call('bob')).status).toBe(200);
    const refused = await call('bob');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text).error.message).toBe('Tagbox: your budget is spent for this month; an admin can raise it');
    expect(blocked.find((e) => e.session === 'sess-bob')?.budget).toEqual({ scope: 'member', period: 'month' });
    // Alice's DMs are not Bob's budget.
    expect((await call('alice')).status).toBe(200);
    // The org's budget holds everyone's work, DMs included.
    await store.db.deleteFrom('budgets').where('id', '=', member.budget.id).execute();
    const org = await upsertBudget(store.db, { orgId, scope: { kind: 'org', id: orgId }, period: 'day', unit: 'tokens', limit: 1, updatedBy: 'test' });
    await sleep(2 * BUDGETS_TTL_MS);
    const byOrg = await call('alice');
    expect(JSON.parse(byOrg.text).error.message).toBe("Tagbox: the org's budget is spent for today; an admin can raise it");
    expect((await call('eng')).status).toBe(403);
    await store.db.deleteFrom('budgets').where('id', '=', org.budget.id).execute();
    expect((await call('alice')).status).toBe(200);
  });

  it('passes the stream on as it comes: the client reads the first event before the upstream sends the last', async () => {
    const res = await request('https://api.anthropic.com/v1/messages?s=slow', { method: 'POST', dispatcher: listeners.eng!.agent, body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(200);
    const reader = res.body[Symbol.asyncIterator]();
    const first = await Promise.race([reader.next(), sleep(5000).then(() => undefined)]);
    expect(first).toBeDefined();
    expect(Buffer.from((first as IteratorResult<Buffer>).value).toString()).toContain('event: message_start');
    // The upstream is still holding the rest back.
    await api.waiting();
    expect(api.finishedSlow()).toBe(false);
    const before = (await usageOfSession(store.db, 'sess-eng')).length;
    api.release();
    let rest = '';
    for (let next = await reader.next(); !next.done; next = await reader.next()) rest += Buffer.from(next.value).toString();
    expect(rest).toContain('event: message_stop');
    const rows = await usageOf('sess-eng', before + 1);
    expect(rows.at(-1)).toMatchObject({ outputTokens: SSE_USAGE.outputTokens, inputTokens: SSE_USAGE.inputTokens });
  });

  it('records what was seen when the client goes away mid-answer', async () => {
    const before = (await usageOfSession(store.db, 'sess-alice')).length;
    const controller = new AbortController();
    const res = await request('https://api.anthropic.com/v1/messages?s=slow', { method: 'POST', dispatcher: listeners.alice!.agent, body: '{}', signal: controller.signal });
    const reader = res.body[Symbol.asyncIterator]();
    await reader.next();
    await api.waiting();
    controller.abort();
    const rows = await usageOf('sess-alice', before + 1);
    expect(rows).toHaveLength(before + 1);
    // message_start's counts: the output so far is its 1.
    expect(rows.at(-1)).toMatchObject({ inputTokens: SSE_USAGE.inputTokens, outputTokens: 1, cacheReadTokens: SSE_USAGE.cacheReadTokens });
    api.release();
  });

  it('clamps or ignores usage that lies, reads past garbage, and keeps serving', async () => {
    const before = (await usageOfSession(store.db, 'sess-eng')).length;
    expect((await call('eng', 'lying')).status).toBe(200);
    const rows = await usageOf('sess-eng', before + 1);
    expect(rows.at(-1)).toMatchObject({ model: 'unknown', inputTokens: 0, outputTokens: 0, cacheReadTokens: MAX_TOKENS, cacheCreationTokens: 0 });
    const garbage = await call('eng', 'garbage');
    expect(garbage.status).toBe(200);
    expect((await call('eng', 'error')).status).toBe(529);
    expect((await call('eng')).status).toBe(200);
    await sleep(200);
    // Garbage and an error carry no usage: nothing recorded for them.
    expect(await usageOfSession(store.db, 'sess-eng')).toHaveLength(before + 2);
  });

  it('reads a compressed answer of an upstream that compressed anyway', async () => {
    const before = (await usageOfSession(store.db, 'sess-eng')).length;
    const answer = await call('eng', 'gzip');
    expect(answer.status).toBe(200);
    const rows = await usageOf('sess-eng', before + 1);
    expect(rows.at(-1)).toMatchObject({ inputTokens: 11, outputTokens: 22, model: JSON_USAGE.model });
  });

  it('never lets the model host of a metered listener past the tap: no upgrade, no unopened tunnel', async () => {
    const upgrade = await tlsThroughConnect(
      { port: listeners.eng!.listener.port! },
      { target: 'api.anthropic.com:443', servername: 'api.anthropic.com', ca: deployCa.certPem, request: 'GET /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n' },
    );
    expect(statusOf(upgrade.response)).toBe(403);
    expect(upgrade.response).toContain('api.anthropic.com is metered (model usage and budgets): upgrades to it are refused');

    const passing = new AgentProxy({
      ca: deployCa,
      audit,
      upstream: { connectTo: parseConnectTo([`api.anthropic.com:443:127.0.0.1:${api.port}`]), extraCaPem: upstreamCa.certPem },
      passthrough: ['api.anthropic.com'],
      meter: new ModelMeter({ store, prices: priceTable() }),
    });
    try {
      const metered = await passing.listen({ host: '127.0.0.1', port: 0 }, { session: 'sess-pass', policy: policyOf(BUNDLES), usage: { orgId, place: { kind: 'channel', channelId: engId } } });
      const unmetered = await passing.listen({ host: '127.0.0.1', port: 0 }, { session: 'sess-pass-plain', policy: policyOf(BUNDLES) });
      const refused = await tlsThroughConnect({ port: metered.port! }, { target: 'api.anthropic.com:443', servername: 'api.anthropic.com', ca: upstreamCa.certPem });
      expect(refused.connectStatus).toBe(403);
      expect(refused.connectResponse).toContain('cannot be tunnelled unopened');
      // The same passthrough setting still tunnels for a listener that meters nothing (tagbox exec, the standalone proxy).
      const tunnelled = await tlsThroughConnect({ port: unmetered.port! }, { target: 'api.anthropic.com:443', servername: 'api.anthropic.com', ca: upstreamCa.certPem, request: 'POST /v1/messages?s=json HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' });
      expect(tunnelled.connectStatus).toBe(200);
      expect(statusOf(tunnelled.response)).toBe(200);
    } finally {
      await passing.close();
    }
  });

  it('never opens a metered listener on a proxy without a meter', async () => {
    const bare = new AgentProxy({ ca: deployCa, audit, upstream: { connectTo: parseConnectTo([]) } });
    await expect(bare.listen({ host: '127.0.0.1', port: 0 }, { session: 's', policy: policyOf(BUNDLES), usage: { orgId, place: { kind: 'channel', channelId: engId } } })).rejects.toThrow(/model meter/);
    await bare.close();
  });

  it('fails closed when the budgets cannot be read: 503, nothing sent', async () => {
    const { key, session } = await freshChannel('broken');
    await store.db.schema.dropTable('budgets').execute();
    await sleep(2 * BUDGETS_TTL_MS);
    const sent = api.received.length;
    const answer = await call(key);
    expect(answer.status).toBe(503);
    expect(answer.headers['x-tagbox-decision']).toBe('blocked');
    expect(JSON.parse(answer.text)).toEqual({ type: 'error', error: { type: 'api_error', message: 'Tagbox: the model budgets could not be checked; try again in a moment' } });
    expect(api.received.length).toBe(sent);
    const [event] = await egressEvents((e) => e.session === session && e.outcome === 'blocked', 1);
    expect(event?.reason).toMatch(/^the model budgets could not be checked: /);
  });
});
