import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseParser } from '../../src/cli/chat/sse-parser.js';
import { createMember } from '../../src/access/members-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import { buildServer } from '../../src/server/app.js';
import { createToken } from '../../src/server/tokens-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { logger, startSessions, type SessionHarness } from '../sessions/harness.js';

/**
 * The chat API over HTTP, as a member token holder would use — and attack —
 * it: other members' DMs, private channels, other workspaces, bad input, and
 * the SSE stream's replay from Last-Event-ID.
 */
describe.each(BACKENDS)('the chat API (%s)', (name) => {
  let h: SessionHarness;
  let app: FastifyInstance;
  let url: string;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const call = async (who: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...(who ? { authorization: `Bearer ${tokens[who]}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- responses read ad hoc
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, body: json, text };
  };
  /** Reads the SSE stream until `count` events arrived, then closes it. */
  const sse = async (who: string, thread: string, count: number, lastEventId?: string) => {
    const abort = new AbortController();
    const res = await fetch(`${url}/api/v1/threads/${thread}/events`, {
      headers: { authorization: `Bearer ${tokens[who]}`, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      signal: abort.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const parser = new SseParser();
    const events: Array<{ id: string; event: string; data: any }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const e of parser.push(Buffer.from(value).toString('utf8'))) events.push({ id: e.id, event: e.type, data: JSON.parse(e.data) });
    }
    abort.abort();
    return events;
  };

  beforeAll(async () => {
    h = await startSessions(name);
    app = await buildServer({
      store: h.store,
      audit: h.audit,
      access: h.access,
      sealer: async () => {
        throw new Error('no vault in this test');
      },
      logger,
      chat: { service: h.layer.service, hub: h.layer.hub, engines: h.layer.engines.names() },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const mint = async (label: string, workspaceId = h.workspaceId) => {
      const member = await createMember(h.store.db, { workspaceId, externalId: label, displayName: label, hasAccount: true });
      ids[label] = member.id;
      tokens[label] = (await createToken(h.store.db, { orgId: h.orgId, memberId: member.id, role: 'member', name: 't', createdBy: 'test' })).token;
    };
    await mint('alice');
    await mint('bob');
    const other = await createWorkspace(h.store.db, { orgId: h.orgId, kind: 'slack', externalId: `T-${name}`, name: 'Other' });
    await mint('outsider', other.id);
    ids.otherChannel = (await createChannel(h.store.db, { workspaceId: other.id, externalId: 'o', name: 'other' })).id;
    ids.private = await h.channel('secret-room', { isPrivate: true });
    const owner = await createToken(h.store.db, { orgId: h.orgId, memberId: h.owner.id, role: 'owner', name: 't', createdBy: 'test' });
    tokens.owner = owner.token;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('posts in a channel, answers 202 with the thread, and streams the turn over SSE; Last-Event-ID resumes after it', async () => {
    const posted = await call('alice', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'echo from-alice' });
    expect(posted.status).toBe(202);
    expect(posted.body).toEqual({ thread: expect.any(String), message: expect.any(String) });
    const events = await sse('alice', posted.body.thread, 5);
    expect(events[0]).toMatchObject({ id: '1', event: 'message', data: { id: posted.body.message, author: { kind: 'member', id: ids.alice, name: 'alice' }, text: 'echo from-alice' } });
    const done = await h.untilDone(posted.body.thread);
    const all = await sse('alice', posted.body.thread, done.length);
    expect(all.map((e) => e.event).at(-1)).toBe('done');
    expect(all.map((e) => Number(e.id))).toEqual(done.map((e) => e.seq));
    // Resuming after event 2 gives exactly what came after it.
    const resumed = await sse('alice', posted.body.thread, done.length - 2, '2');
    expect(resumed.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
    // Bob, in the same workspace, reads the channel thread; the thread names its place and session.
    const thread = await call('bob', 'GET', `/api/v1/threads/${posted.body.thread}`);
    expect(thread.status).toBe(200);
    expect(thread.body).toMatchObject({ thread: posted.body.thread, place: { kind: 'channel', channel: h.channelId }, session: { identity: 'agent', engine: 'shell' } });
    expect(thread.body.messages.map((m: { author: { kind: string } }) => m.author.kind)).toEqual(['member', 'agent']);
    // Bob continues it; the author is Bob, the identity is still the agent.
    const continued = await call('bob', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'echo from-bob', thread: posted.body.thread });
    expect(continued.status).toBe(202);
    expect(continued.body.thread).toBe(posted.body.thread);
  });

  it("keeps DMs to their member: no one else can read, stream, post in or cancel someone's DM thread", async () => {
    const dm = await call('alice', 'POST', '/api/v1/dms/messages', { text: 'echo private' });
    expect(dm.status).toBe(202);
    const thread = dm.body.thread as string;
    expect((await call('alice', 'GET', `/api/v1/threads/${thread}`)).body.session.identity).toBe('member');
    for (const who of ['bob', 'owner', 'outsider']) {
      expect((await call(who, 'GET', `/api/v1/threads/${thread}`)).status).toBe(404);
      expect((await call(who, 'GET', `/api/v1/threads/${thread}/events`)).status).toBe(404);
      expect((await call(who, 'POST', `/api/v1/threads/${thread}/cancel`)).status).toBe(404);
      // Posting into it through one's own DM route is posting into one's own DM: that thread is not there.
      expect((await call(who, 'POST', '/api/v1/dms/messages', { text: 'hi', thread })).status).toBe(404);
      // Nor through a channel.
      expect((await call(who, 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi', thread })).status).toBe(404);
    }
    await h.untilDone(thread);
    expect((await h.events(thread)).filter((e) => e.type === 'message').map((e) => (e.data.author as { id?: string }).id ?? 'agent')).toEqual([ids.alice, 'agent']);
  });

  it('private channels are for their members; other workspaces do not exist for you', async () => {
    const refused = await call('alice', 'POST', `/api/v1/channels/${ids.private}/messages`, { text: 'hi' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/is private: only its members/);
    expect((await call('alice', 'GET', '/api/v1/channels')).body.map((c: { id: string }) => c.id)).not.toContain(ids.private);
    // An admin adds her; now she can, and sees it.
    expect((await call('owner', 'POST', `/api/v1/channels/${ids.private}/members`, { memberId: ids.alice })).status).toBe(201);
    expect((await call('alice', 'GET', '/api/v1/channels')).body.map((c: { id: string }) => c.id)).toContain(ids.private);
    const ok = await call('alice', 'POST', `/api/v1/channels/${ids.private}/messages`, { text: 'echo inside' });
    expect(ok.status).toBe(202);
    // Bob, not a member, cannot read the thread made there.
    expect((await call('bob', 'GET', `/api/v1/threads/${ok.body.thread}`)).status).toBe(404);
    // A member may not add members.
    expect((await call('alice', 'POST', `/api/v1/channels/${ids.private}/members`, { memberId: ids.bob })).status).toBe(403);
    // Another workspace's channel, and this workspace's channel for an outsider: 404.
    expect((await call('alice', 'POST', `/api/v1/channels/${ids.otherChannel}/messages`, { text: 'hi' })).status).toBe(404);
    expect((await call('outsider', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi' })).status).toBe(404);
    expect((await call('outsider', 'GET', `/api/v1/threads/${ok.body.thread}`)).status).toBe(404);
    await h.untilDone(ok.body.thread);
  });

  it('answers bad input with a 4xx naming what was wrong, and keeps serving', async () => {
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['POST', `/api/v1/channels/${h.channelId}/messages`, { text: '' }, 400, /text: expected a message/],
      ['POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'x'.repeat(40_000) }, 400, /over the 32768-byte limit/],
      ['POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi', extra: 1 }, 400, /body/],
      ['POST', `/api/v1/channels/${h.channelId}/messages`, { text: 42 }, 400, /body\.text/],
      ['POST', `/api/v1/channels/${h.channelId}/messages`, '{"text": "unterminated', 400, /JSON|json/],
      ['POST', '/api/v1/channels/no-such-channel/messages', { text: 'hi' }, 404, /channel \\"no-such-channel\\" not found/],
      ['POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi', thread: 'no-such-thread' }, 404, /thread no-such-thread/],
      ['GET', '/api/v1/threads/no-such-thread', undefined, 404, /not found/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await call('alice', method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 60)}`).toBe(status);
      expect(res.text).toMatch(message);
    }
    expect((await call(undefined, 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi' })).status).toBe(401);
    expect((await call('alice', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'hi' }, { 'idempotency-key': 'bad key with spaces' })).status).toBe(400);
    expect((await call('alice', 'GET', '/api/v1/channels')).status).toBe(200);
  });

  it('processes a repeated Idempotency-Key once, and keys are per member', async () => {
    const headers = { 'idempotency-key': `retry-${name}` };
    const first = await call('alice', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'echo once' }, headers);
    const again = await call('alice', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'echo once' }, headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ thread: first.body.thread, message: first.body.message, duplicate: true });
    // Bob's use of the same key is his own message.
    const bobs = await call('bob', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'echo mine' }, headers);
    expect(bobs.status).toBe(202);
    expect(bobs.body.thread).not.toBe(first.body.thread);
    await h.untilDone(first.body.thread);
    await h.untilDone(bobs.body.thread);
  });

  it('refuses DMs when they are off: 403 with the reason, and the thread says it', async () => {
    await h.store.db.updateTable('orgs').set({ dms_allowed: 0 }).where('id', '=', h.orgId).execute();
    try {
      const res = await call('bob', 'POST', '/api/v1/dms/messages', { text: 'hi' });
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'refused', reason: 'dms-off' });
      expect(res.body.error.message).toMatch(/turned off direct messages/);
      const thread = await call('bob', 'GET', `/api/v1/threads/${res.body.thread}`);
      expect(thread.body.messages).toEqual([expect.objectContaining({ author: { kind: 'system' }, text: res.body.error.message })]);
    } finally {
      await h.store.db.updateTable('orgs').set({ dms_allowed: 1 }).where('id', '=', h.orgId).execute();
    }
  });

  it('lets any participant cancel; the thread says who', async () => {
    const posted = await call('alice', 'POST', `/api/v1/channels/${h.channelId}/messages`, { text: 'sleep 30' });
    await h.until('running', async () => (await h.events(posted.body.thread)).some((e) => e.type === 'status' && e.data.state === 'running'));
    const cancel = await call('bob', 'POST', `/api/v1/threads/${posted.body.thread}/cancel`);
    expect(cancel.body).toEqual({ cancelled: true });
    const events = await h.untilDone(posted.body.thread, 1, 20_000);
    expect(events.find((e) => e.type === 'done')!.data.status).toBe('cancelled');
    expect((await call('alice', 'GET', `/api/v1/threads/${posted.body.thread}`)).body.messages.at(-1)).toMatchObject({ author: { kind: 'system' }, text: 'Stopped by bob.' });
  });

  it("sets a channel's engine and instructions and the org's instructions (admins), validated", async () => {
    const channel = await h.channel(`settings-${name}`);
    expect((await call('alice', 'PATCH', `/api/v1/channels/${channel}`, { engine: 'shell' })).status).toBe(403);
    const bad = await call('owner', 'PATCH', `/api/v1/channels/${channel}`, { engine: 'gpt-9' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/body\.engine: expected one of shell/);
    const set = await call('owner', 'PATCH', `/api/v1/channels/${channel}`, { engine: 'shell', instructions: 'Be brief.' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ id: channel, engine: 'shell', instructions: 'Be brief.' });
    expect((await call('owner', 'PATCH', '/api/v1/org', { instructions: 'We are Acme.' })).body.instructions).toBe('We are Acme.');
    expect((await call('owner', 'GET', '/api/v1/org')).body.instructions).toBe('We are Acme.');
    expect((await call('owner', 'PATCH', '/api/v1/org', { instructions: 'x'.repeat(17 * 1024) })).status).toBe(400);
    // Audited by field name, never by content.
    const changes = [];
    for await (const e of h.audit.query({ type: 'admin-change' })) changes.push(e);
    expect(JSON.stringify(changes)).not.toContain('We are Acme.');
    expect(JSON.stringify(changes)).not.toContain('Be brief.');
  });
});
