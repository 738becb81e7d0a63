import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg } from '../../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../../src/access/workspaces-repo.js';
import { appendEvent } from '../../../src/sessions/event-log.js';
import { findOrCreateSession } from '../../../src/sessions/sessions-repo.js';
import { queueTurn } from '../../../src/sessions/turns-repo.js';
import { openControlStore, type ControlStore } from '../../../src/store/database.js';
import { withWriteTransaction } from '../../../src/store/write-transaction.js';
import { claimPost, getPost, markPosted, setPostTs } from '../../../src/surfaces/slack/slack-posts-repo.js';
import { advanceDelivered, bindThread, findThreadByTs, scheduledSessionsWithoutThread, threadOfSession, threadsBehind } from '../../../src/surfaces/slack/slack-threads-repo.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../../helpers/backends.js';

describe.each(BACKENDS)('slack threads and posts (%s)', (name) => {
  let backend: TestBackend;
  let store: ControlStore;
  let orgId: string;
  let slackWs: string;
  let webWs: string;
  let slackChannel: string;
  let webChannel: string;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    store = await openControlStore(backend.location);
    orgId = (await createOrg(store.db, 'acme')).id;
    slackWs = (await createWorkspace(store.db, { orgId, kind: 'slack', externalId: 'T1', name: 'Acme' })).id;
    webWs = (await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'Web' })).id;
    slackChannel = (await createChannel(store.db, { workspaceId: slackWs, externalId: 'C1', name: 'eng' })).id;
    webChannel = (await createChannel(store.db, { workspaceId: webWs, externalId: 'w', name: 'w' })).id;
  });
  afterAll(async () => {
    await store.close();
    await backend.cleanup();
  });

  const session = async (workspaceId: string, channelId: string, trigger: 'message' | 'schedule' = 'message') =>
    withWriteTransaction(store, undefined, async (db) => {
      const { session: s } = await findOrCreateSession(db, { orgId, workspaceId, place: { kind: 'channel', channelId }, identity: 'agent', engine: 'shell' });
      await queueTurn(db, { sessionId: s.id, orgId, trigger, postgres: name === 'postgres' });
      return s;
    });

  it('binds a session to one thread, and a thread to one session', async () => {
    const s1 = await session(slackWs, slackChannel);
    const s2 = await session(slackWs, slackChannel);
    expect(await bindThread(store.db, { sessionId: s1.id, workspaceId: slackWs, channel: 'C1', threadTs: '1.0001' })).toBe(true);
    expect(await bindThread(store.db, { sessionId: s1.id, workspaceId: slackWs, channel: 'C1', threadTs: '1.0002' })).toBe(false);
    expect(await bindThread(store.db, { sessionId: s2.id, workspaceId: slackWs, channel: 'C1', threadTs: '1.0001' })).toBe(false);
    expect(await threadOfSession(store.db, s1.id)).toEqual({ sessionId: s1.id, workspaceId: slackWs, channel: 'C1', threadTs: '1.0001', deliveredSeq: 0 });
    expect(await threadOfSession(store.db, s2.id)).toBeUndefined();
    expect((await findThreadByTs(store.db, slackWs, 'C1', '1.0001'))?.sessionId).toBe(s1.id);
    expect(await findThreadByTs(store.db, slackWs, 'C2', '1.0001')).toBeUndefined();
  });

  it('lists threads behind their event log, and delivery never moves back', async () => {
    const s = await session(slackWs, slackChannel);
    await bindThread(store.db, { sessionId: s.id, workspaceId: slackWs, channel: 'C1', threadTs: '2.0001' });
    const behind = async () => (await threadsBehind(store.db)).some((t) => t.sessionId === s.id);
    expect(await behind()).toBe(false);
    await appendEvent(store.db, s.id, 'progress', { text: 'a' });
    await appendEvent(store.db, s.id, 'progress', { text: 'b' });
    expect(await behind()).toBe(true);
    await advanceDelivered(store.db, s.id, 2);
    expect(await behind()).toBe(false);
    await advanceDelivered(store.db, s.id, 1);
    expect((await threadOfSession(store.db, s.id))?.deliveredSeq).toBe(2);
  });

  it('finds the Slack sessions a schedule started that have no thread yet', async () => {
    const scheduled = await session(slackWs, slackChannel, 'schedule');
    await session(slackWs, slackChannel, 'message');
    await session(webWs, webChannel, 'schedule');
    const found = async () => (await scheduledSessionsWithoutThread(store.db)).map((r) => r.sessionId);
    expect(await found()).toEqual([scheduled.id]);
    expect((await scheduledSessionsWithoutThread(store.db))[0]).toEqual({ sessionId: scheduled.id, workspaceId: slackWs, channelId: slackChannel });
    await bindThread(store.db, { sessionId: scheduled.id, workspaceId: slackWs, channel: 'C1', threadTs: '3.0001' });
    expect(await found()).toEqual([]);
  });

  it('claims a post once, whoever races for it', async () => {
    const claims = await Promise.all(Array.from({ length: 6 }, () => claimPost(store.db, { workspaceId: slackWs, key: 'answer:t1', channel: 'C1' })));
    expect(claims.filter((c) => c.claimed)).toHaveLength(1);
    expect(claims.every((c) => c.post.state === 'posting' && c.post.ts === undefined)).toBe(true);
    await setPostTs(store.db, slackWs, 'answer:t1', '9.0001');
    expect(await getPost(store.db, slackWs, 'answer:t1')).toEqual({ workspaceId: slackWs, key: 'answer:t1', channel: 'C1', ts: '9.0001', state: 'posting' });
    await markPosted(store.db, slackWs, 'answer:t1', undefined);
    const again = await claimPost(store.db, { workspaceId: slackWs, key: 'answer:t1', channel: 'C1' });
    expect(again).toEqual({ claimed: false, post: { workspaceId: slackWs, key: 'answer:t1', channel: 'C1', ts: '9.0001', state: 'posted' } });
    // Keys are per workspace.
    expect((await claimPost(store.db, { workspaceId: webWs, key: 'answer:t1', channel: 'C1' })).claimed).toBe(true);
    expect(await getPost(store.db, slackWs, 'nothing')).toBeUndefined();
  });
});
