import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import { appendEvent, readEvents } from '../../src/sessions/event-log.js';
import { findOrCreateSession } from '../../src/sessions/sessions-repo.js';
import { claimTurn, dropQueuedTurn, finishTurn, queueTurn } from '../../src/sessions/turns-repo.js';
import { takeSandboxSlot } from '../../src/sessions/sandbox-slots.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { withWriteTransaction } from '../../src/store/write-transaction.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * What must hold across processes is a constraint in the store: these tests
 * race two connections (two servers) at it on both dialects.
 */
describe.each(BACKENDS)('the session store (%s)', (name) => {
  let backend: TestBackend;
  let a: ControlStore;
  let b: ControlStore;
  let orgId: string;
  let workspaceId: string;
  let channelId: string;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    a = await openControlStore(backend.location);
    // Two pools on Postgres. SQLite: one connection — two better-sqlite3
    // connections in one process would block each other's event loop (two
    // processes, the real case, wait on the file lock instead).
    b = name === 'postgres' ? await openControlStore(backend.location) : a;
    const org = await createOrg(a.db, 'acme');
    orgId = org.id;
    workspaceId = (await createWorkspace(a.db, { orgId, kind: 'web', externalId: 'web', name: 'Web' })).id;
    channelId = (await createChannel(a.db, { workspaceId, externalId: 'c', name: 'c' })).id;
  });
  afterAll(async () => {
    await a.close();
    if (b !== a) await b.close();
    await backend.cleanup();
  });

  const newSession = (store: ControlStore, threadKey?: string) =>
    withWriteTransaction(store, undefined, (db) =>
      findOrCreateSession(db, { orgId, workspaceId, place: { kind: 'channel', channelId }, ...(threadKey ? { threadKey } : {}), identity: 'agent', engine: 'shell' }),
    );

  it('one session per thread key, however many deliveries race for it', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => newSession(i % 2 ? a : b, 'ts-1')));
    expect(new Set(results.map((r) => r.session.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('numbers events densely per session whichever connection appends', async () => {
    const { session } = await newSession(a);
    await Promise.all(Array.from({ length: 40 }, (_, i) => appendEvent(i % 2 ? a.db : b.db, session.id, 'progress', { i })));
    const events = await readEvents(a.db, session.id, 0);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.data.i)).size).toBe(40);
    expect((await readEvents(a.db, session.id, 35)).map((e) => e.seq)).toEqual([36, 37, 38, 39, 40]);
  });

  it('one claim wins a queued turn, and a session never has two running turns', async () => {
    const { session } = await newSession(a);
    const queue = (store: ControlStore) => withWriteTransaction(store, undefined, (db) => queueTurn(db, { sessionId: session.id, orgId, trigger: 'message', postgres: name === 'postgres' }));
    const first = await queue(a);
    // A second message before the turn starts joins it.
    expect((await queue(b)).turn.id).toBe(first.turn.id);
    const claims = await Promise.all([claimTurn(a.db, first.turn.id, 'server-a'), claimTurn(b.db, first.turn.id, 'server-b')]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    // A message during the turn makes the next one, which cannot run until the first ends.
    const next = await queue(b);
    expect(next.created).toBe(true);
    expect(await claimTurn(b.db, next.turn.id, 'server-b')).toBe(false);
    const winner = claims[0] ? 'server-a' : 'server-b';
    // Only the holder ends it, once.
    expect(await finishTurn(a.db, first.turn.id, 'someone-else', 'done')).toBe(false);
    expect(await finishTurn(a.db, first.turn.id, winner, 'done')).toBe(true);
    expect(await finishTurn(a.db, first.turn.id, winner, 'done')).toBe(false);
    expect(await claimTurn(b.db, next.turn.id, 'server-b')).toBe(true);
    expect(await dropQueuedTurn(a.db, next.turn.id, 'cancelled')).toBe(false);
  });

  it("counts the org's sandbox slots in the store: two servers never pass the cap together", async () => {
    const sessions = await Promise.all(Array.from({ length: 6 }, () => newSession(a)));
    const answers = await Promise.all(sessions.map((s, i) => takeSandboxSlot(i % 2 ? a : b, orgId, s.session.id, i % 2 ? 'server-a' : 'server-b', 3)));
    expect(answers.filter((x) => x === 'taken')).toHaveLength(3);
    expect(answers.filter((x) => x === 'full')).toHaveLength(3);
    const taken = sessions.filter((_, i) => answers[i] === 'taken');
    const holder = (i: number) => (sessions.indexOf(taken[i]!) % 2 ? 'server-a' : 'server-b');
    expect(await takeSandboxSlot(a, orgId, taken[0]!.session.id, holder(0), 3)).toBe('held');
    expect(await takeSandboxSlot(a, orgId, taken[0]!.session.id, holder(0) === 'server-a' ? 'server-b' : 'server-a', 3)).toBe('elsewhere');
  });
});
