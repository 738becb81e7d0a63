import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import { findOrCreateSession } from '../../src/sessions/sessions-repo.js';
import { recordTurnOutput as recordNow, turnOutputs, type NewTurnOutput } from '../../src/sessions/turn-outputs-repo.js';
import { claimTurn, finishTurn, queueTurn } from '../../src/sessions/turns-repo.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { withWriteTransaction } from '../../src/store/write-transaction.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * What turns left outside the sandbox, on both dialects: recorded once per
 * turn and thing (the proxy may report the same push or pull request again),
 * listed oldest first, for the session or one of its turns.
 */
describe.each(BACKENDS)('turn outputs (%s)', (name) => {
  let backend: TestBackend;
  let store: ControlStore;
  let orgId: string;
  let workspaceId: string;
  let channelId: string;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    store = await openControlStore(backend.location);
    orgId = (await createOrg(store.db, 'acme')).id;
    workspaceId = (await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'Web' })).id;
    channelId = (await createChannel(store.db, { workspaceId, externalId: 'c', name: 'c' })).id;
  });
  afterEach(() => vi.useRealTimers());
  afterAll(async () => {
    await store.close();
    await backend.cleanup();
  });

  const newSession = async () =>
    (await withWriteTransaction(store, undefined, (db) => findOrCreateSession(db, { orgId, workspaceId, place: { kind: 'channel', channelId }, identity: 'agent', engine: 'shell' }))).session;
  /** A turn that ran and ended, so that the session's next one is a new row. */
  const ranTurn = async (sessionId: string) => {
    const { turn } = await withWriteTransaction(store, undefined, (db) => queueTurn(db, { sessionId, orgId, trigger: 'message', postgres: name === 'postgres' }));
    expect(await claimTurn(store.db, turn.id, 'server-a')).toBe(true);
    expect(await finishTurn(store.db, turn.id, 'server-a', 'done')).toBe(true);
    return turn;
  };
  // Rows are a millisecond apart, as the reports of a turn nearly always are (one the same millisecond: the last test).
  const recordTurnOutput = async (db: ControlStore['db'], sessionId: string, turnId: string, output: NewTurnOutput) => {
    await sleep(2);
    return recordNow(db, sessionId, turnId, output);
  };
  const pr = { kind: 'pull-request' as const, repository: 'acme/widgets', number: 42, url: 'https://github.com/acme/widgets/pull/42', title: 'Fix the parser' };
  const branch = { kind: 'branch' as const, repository: 'acme/widgets', ref: 'refs/heads/tagbox/th1' };

  it('a pull request and a branch: recorded the first time, not again; read back as they were', async () => {
    const session = await newSession();
    const turn = await ranTurn(session.id);
    expect(await recordTurnOutput(store.db, session.id, turn.id, pr)).toBe(true);
    expect(await recordTurnOutput(store.db, session.id, turn.id, pr)).toBe(false);
    // The same number with another title or url is still the same pull request.
    expect(await recordTurnOutput(store.db, session.id, turn.id, { ...pr, title: 'Renamed', url: 'https://github.com/acme/widgets/pull/42#x' })).toBe(false);
    expect(await recordTurnOutput(store.db, session.id, turn.id, branch)).toBe(true);
    expect(await recordTurnOutput(store.db, session.id, turn.id, branch)).toBe(false);
    const outputs = await turnOutputs(store.db, session.id);
    expect(outputs).toEqual([
      { ...pr, turn: turn.id, at: expect.any(String) },
      { ...branch, turn: turn.id, at: expect.any(String) },
    ]);
    for (const o of outputs) expect(Date.parse(o.at)).not.toBeNaN();
  });

  it('a pull request without a title has none; a number that is also a branch name is a different thing', async () => {
    const session = await newSession();
    const turn = await ranTurn(session.id);
    const { title: _title, ...untitled } = pr;
    expect(await recordTurnOutput(store.db, session.id, turn.id, untitled)).toBe(true);
    // Kind is part of what is unique: a branch named "42" is not pull request 42.
    expect(await recordTurnOutput(store.db, session.id, turn.id, { kind: 'branch', repository: 'acme/widgets', ref: '42' })).toBe(true);
    // And so is the repository.
    expect(await recordTurnOutput(store.db, session.id, turn.id, { ...untitled, repository: 'acme/gadgets', url: 'https://github.com/acme/gadgets/pull/42' })).toBe(true);
    const outputs = await turnOutputs(store.db, session.id);
    expect(outputs).toHaveLength(3);
    expect(outputs[0]).toEqual({ ...untitled, turn: turn.id, at: expect.any(String) });
    expect(outputs[0]).not.toHaveProperty('title');
    expect(outputs[1]).toEqual({ kind: 'branch', repository: 'acme/widgets', ref: '42', turn: turn.id, at: expect.any(String) });
  });

  it('per turn: the same thing in a later turn is recorded again, and each turn lists its own, oldest first', async () => {
    const session = await newSession();
    const first = await ranTurn(session.id);
    const second = await ranTurn(session.id);
    expect(second.id).not.toBe(first.id);
    const refs = ['refs/heads/tagbox/a', 'refs/heads/tagbox/b', 'refs/heads/tagbox/c'];
    for (const ref of refs) expect(await recordTurnOutput(store.db, session.id, first.id, { ...branch, ref })).toBe(true);
    expect(await recordTurnOutput(store.db, session.id, second.id, { ...branch, ref: refs[0]! })).toBe(true);
    expect(await recordTurnOutput(store.db, session.id, second.id, pr)).toBe(true);

    const ofFirst = await turnOutputs(store.db, session.id, first.id);
    expect(ofFirst.map((o) => (o.kind === 'branch' ? o.ref : o.number))).toEqual(refs);
    expect(ofFirst.every((o) => o.turn === first.id)).toBe(true);
    const ofSecond = await turnOutputs(store.db, session.id, second.id);
    expect(ofSecond.map((o) => o.kind)).toEqual(['branch', 'pull-request']);
    const all = await turnOutputs(store.db, session.id);
    expect(all.map((o) => o.turn)).toEqual([first.id, first.id, first.id, second.id, second.id]);
    // Oldest first: the times never go backwards.
    const times = all.map((o) => o.at);
    expect([...times].sort()).toEqual(times);
  });

  it("a session sees only its own; another session's turn id lists nothing here", async () => {
    const a = await newSession();
    const b = await newSession();
    const ta = await ranTurn(a.id);
    const tb = await ranTurn(b.id);
    expect(await recordTurnOutput(store.db, a.id, ta.id, branch)).toBe(true);
    expect(await recordTurnOutput(store.db, b.id, tb.id, branch)).toBe(true);
    expect((await turnOutputs(store.db, a.id)).map((o) => o.turn)).toEqual([ta.id]);
    expect(await turnOutputs(store.db, a.id, tb.id)).toEqual([]);
    expect(await turnOutputs(store.db, (await newSession()).id)).toEqual([]);
  });

  it('reports of the same thing racing each other record it once', async () => {
    const session = await newSession();
    const turn = await ranTurn(session.id);
    const results = await Promise.all(Array.from({ length: 8 }, () => recordNow(store.db, session.id, turn.id, pr)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await turnOutputs(store.db, session.id, turn.id)).toHaveLength(1);
  });

  it("oldest first holds within one millisecond too: a push's branches are listed in the order they were recorded", async () => {
    // The turn runner records a push's refs one after another (turn-runner.ts github()): often within one millisecond.
    const session = await newSession();
    const turn = await ranTurn(session.id);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-06-01T12:00:00.000Z'));
    const refs = Array.from({ length: 12 }, (_, i) => `refs/heads/tagbox/part-${String(i).padStart(2, '0')}`);
    for (const ref of refs) expect(await recordNow(store.db, session.id, turn.id, { ...branch, ref })).toBe(true);
    vi.useRealTimers();
    const listed = await turnOutputs(store.db, session.id, turn.id);
    expect(listed.map((o) => (o.kind === 'branch' ? o.ref : ''))).toEqual(refs);
  });
});
