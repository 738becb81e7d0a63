import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addChannelMember } from '../../../src/access/channel-access.js';
import { insertMessage } from '../../../src/sessions/messages-repo.js';
import type { SessionPlace } from '../../../src/sessions/model.js';
import { findOrCreateSession } from '../../../src/sessions/sessions-repo.js';
import { queueTurn } from '../../../src/sessions/turns-repo.js';
import { threadListRoutes } from '../../../src/surfaces/web/thread-list-routes.js';
import { BACKENDS } from '../../helpers/backends.js';
import { startApi, type ApiHarness } from '../../server/harness.js';

/**
 * The chat's thread lists over HTTP: newest activity first, titles, who
 * started, state and counts; paging; and the chat's visibility — a private
 * channel only for its members, a DM only for its member.
 */
describe.each(BACKENDS)('thread lists (%s)', (backend) => {
  let h: ApiHarness;
  let alice: { token: string; memberId: string };
  let bob: { token: string; memberId: string };
  let orgId: string;
  let eng: string;
  let secret: string;
  const threads: Record<string, string> = {};

  const thread = async (name: string, place: SessionPlace, lastActivity: string, messages: Array<{ by?: { id: string; name: string }; text: string; context?: boolean }>) => {
    const { session } = await findOrCreateSession(h.store.db, { orgId, workspaceId: h.webWorkspaceId, place, identity: place.kind === 'dm' ? 'member' : 'agent', engine: 'shell' });
    let s = 0;
    for (const m of messages) {
      s += 1;
      const createdAt = new Date(Date.parse(lastActivity) - 60_000 + s * 1000).toISOString();
      await insertMessage(h.store.db, { sessionId: session.id, author: m.by ? { kind: 'member', ...m.by } : { kind: 'agent' }, text: m.text, createdAt, ...(m.context ? { context: true } : {}) });
    }
    await h.store.db.updateTable('sessions').set({ last_activity_at: lastActivity }).where('id', '=', session.id).execute();
    threads[name] = session.id;
    return session.id;
  };

  beforeAll(async () => {
    h = await startApi(backend, { routes: [threadListRoutes] });
    alice = await h.tokenFor('member', 'Alice');
    bob = await h.tokenFor('member', 'Bob');
    orgId = (await h.api(h.ownerToken, 'GET', '/api/v1/org')).body.id;
    const mk = async (name: string, isPrivate = false) => (await h.api(h.ownerToken, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: name, name, isPrivate })).body.id as string;
    eng = await mk('eng');
    secret = await mk('secret-room', true);
    await addChannelMember(h.store.db, secret, alice.memberId);
    const a = { id: alice.memberId, name: 'Alice' };
    const b = { id: bob.memberId, name: 'Bob' };
    await thread('old', { kind: 'channel', channelId: eng }, '2026-01-01T10:00:00.000Z', [{ by: a, text: '  deploy the site\nwith care' }, { text: 'done' }]);
    await thread('long', { kind: 'channel', channelId: eng }, '2026-01-03T10:00:00.000Z', [
      { by: b, text: 'earlier context from Slack', context: true },
      { by: b, text: 'x'.repeat(300) },
    ]);
    const running = await thread('busy', { kind: 'channel', channelId: eng }, '2026-01-02T10:00:00.000Z', [{ by: a, text: 'run the tests' }, { by: b, text: 'and lint' }]);
    const postgres = backend === 'postgres';
    const first = await queueTurn(h.store.db, { sessionId: running, orgId, trigger: 'message', triggeredBy: alice.memberId, postgres });
    await h.store.db.updateTable('turns').set({ status: 'running' }).where('id', '=', first.turn.id).execute();
    await queueTurn(h.store.db, { sessionId: running, orgId, trigger: 'message', triggeredBy: bob.memberId, postgres });
    const queued = await thread('waiting', { kind: 'channel', channelId: eng }, '2026-01-01T09:00:00.000Z', [{ by: a, text: 'later' }]);
    await queueTurn(h.store.db, { sessionId: queued, orgId, trigger: 'message', postgres });
    await thread('hidden', { kind: 'channel', channelId: secret }, '2026-01-01T00:00:00.000Z', [{ by: a, text: 'private plans' }]);
    await thread('alice-dm', { kind: 'dm', memberId: alice.memberId }, '2026-01-05T00:00:00.000Z', [{ by: a, text: 'my own question' }]);
    await thread('bob-dm', { kind: 'dm', memberId: bob.memberId }, '2026-01-06T00:00:00.000Z', [{ by: b, text: "bob's secret question" }]);
  }, 60_000);
  afterAll(async () => h?.close());

  it("lists a channel's threads newest activity first, with title, starter, state and message count", async () => {
    const got = await h.api(bob.token, 'GET', `/api/v1/channels/${eng}/threads`);
    expect(got.status, got.text).toBe(200);
    expect(got.body.threads).toEqual([
      { thread: threads.long, title: 'x'.repeat(120), startedBy: { id: bob.memberId, name: 'Bob' }, lastActivity: '2026-01-03T10:00:00.000Z', state: 'idle', messages: 1 },
      { thread: threads.busy, title: 'run the tests', startedBy: { id: alice.memberId, name: 'Alice' }, lastActivity: '2026-01-02T10:00:00.000Z', state: 'running', messages: 2 },
      { thread: threads.old, title: 'deploy the site', startedBy: { id: alice.memberId, name: 'Alice' }, lastActivity: '2026-01-01T10:00:00.000Z', state: 'idle', messages: 2 },
      { thread: threads.waiting, title: 'later', startedBy: { id: alice.memberId, name: 'Alice' }, lastActivity: '2026-01-01T09:00:00.000Z', state: 'queued', messages: 1 },
    ]);
  });

  it('pages with limit and before, and refuses bad paging naming the field', async () => {
    const first = await h.api(bob.token, 'GET', `/api/v1/channels/${eng}/threads?limit=2`);
    expect(first.body.threads.map((t: { thread: string }) => t.thread)).toEqual([threads.long, threads.busy]);
    const next = await h.api(bob.token, 'GET', `/api/v1/channels/${eng}/threads?limit=2&before=${encodeURIComponent(first.body.threads[1].lastActivity)}`);
    expect(next.body.threads.map((t: { thread: string }) => t.thread)).toEqual([threads.old, threads.waiting]);
    const bad = async (q: string) => (await h.api(bob.token, 'GET', `/api/v1/channels/${eng}/threads?${q}`)).body.error?.message as string;
    expect(await bad('limit=201')).toMatch(/^query\.limit: /);
    expect(await bad('limit=0')).toMatch(/^query\.limit: /);
    expect(await bad('before=yesterday')).toMatch(/^query\.before: /);
  });

  it("keeps private channels to their members and DMs to their member: nobody lists someone else's threads", async () => {
    expect((await h.api(alice.token, 'GET', `/api/v1/channels/${secret}/threads`)).body.threads.map((t: { title: string }) => t.title)).toEqual(['private plans']);
    const refused = await h.api(bob.token, 'GET', `/api/v1/channels/${secret}/threads`);
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('private plans');
    expect((await h.api(bob.token, 'GET', '/api/v1/channels/no-such-channel/threads')).status).toBe(404);
    expect((await h.api(undefined, 'GET', `/api/v1/channels/${eng}/threads`)).status).toBe(401);

    const mine = await h.api(alice.token, 'GET', '/api/v1/dms/threads');
    expect(mine.body.threads).toEqual([{ thread: threads['alice-dm'], title: 'my own question', startedBy: { id: alice.memberId, name: 'Alice' }, lastActivity: '2026-01-05T00:00:00.000Z', state: 'idle', messages: 1 }]);
    expect(mine.text).not.toContain('secret question');
    expect((await h.api(bob.token, 'GET', '/api/v1/dms/threads')).body.threads.map((t: { thread: string }) => t.thread)).toEqual([threads['bob-dm']]);
    // There is no parameter to name another member's DM.
    expect((await h.api(bob.token, 'GET', `/api/v1/dms/threads?member=${alice.memberId}`)).status).toBe(400);
  });
});
