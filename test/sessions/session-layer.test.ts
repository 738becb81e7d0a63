import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engines/engine.js';
import { loadEngineState } from '../../src/sessions/engine-state.js';
import { listMessages } from '../../src/sessions/messages-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { agentTexts, startSessions, systemTexts, type SessionHarness } from './harness.js';

/**
 * The spine in one process over real parts (proxy daemon, bubblewrap, both
 * stores): a message becomes a turn, runs in the thread's sandbox, and its
 * output comes back into the thread — once, in order, capped, with every
 * lifecycle step in the store and the audit log.
 */

/** A test engine with state: it counts its turns in a file under its state directory. */
const counter: Engine = {
  name: 'counter',
  stateDir: '/home/agent/.counter',
  async *runTurn(turn) {
    const h = turn.exec({ argv: ['sh', '-c', 'mkdir -p ~/.counter && n=$(cat ~/.counter/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ~/.counter/n; echo $n'] });
    let out = '';
    h.stdout.on('data', (c: Buffer) => (out += c.toString()));
    h.stderr.resume();
    await h.result;
    yield { type: 'message', text: `turn ${out.trim()} restored=${turn.restored}` };
    yield { type: 'result', exitCode: 0 };
  },
};

describe.each(BACKENDS)('the session layer (%s)', (name) => {
  let h: SessionHarness;

  beforeAll(async () => {
    h = await startSessions(name, { maxReplyBytes: 2048, progressBytesPerSecond: 4096 }, [counter]);
  }, 60_000);
  afterAll(async () => h?.close());

  it('runs a message as a shell command in the thread sandbox and answers in the thread, once', async () => {
    const { thread, message } = await h.say('@tagbox echo hello; echo oops >&2; exit 3');
    const events = await h.untilDone(thread);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('message');
    expect(events[0]!.data.id).toBe(message);
    expect(types).toContain('status');
    expect(types.filter((t) => t === 'done')).toHaveLength(1);
    expect(events.find((e) => e.type === 'done')!.data).toMatchObject({ status: 'done', exitCode: 3 });
    const replies = agentTexts(events);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/hello\n(.|\n)*oops\n\[exit code 3\]$/);
    // Dense, ordered event numbers.
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const stored = await listMessages(h.store.db, thread);
    expect(stored.map((m) => m.author.kind)).toEqual(['member', 'agent']);
  });

  it('keeps /workspace between turns of a thread while its sandbox lives, and threads apart', async () => {
    const first = await h.say('echo kept > /workspace/f');
    await h.untilDone(first.thread);
    await h.say('cat /workspace/f', { threadKey: first.thread, mustExist: true });
    const events = await h.untilDone(first.thread, 2);
    expect(agentTexts(events)[1]).toMatch(/^kept\n/);
    const other = await h.say('cat /workspace/f || echo absent');
    expect(agentTexts(await h.untilDone(other.thread))[0]).toMatch(/absent/);
  });

  it('queues messages that arrive during a turn and runs them next, in order', async () => {
    const first = await h.say('sleep 1; echo one');
    await h.until('the first turn running', async () => (await h.events(first.thread)).some((e) => e.type === 'status' && e.data.state === 'running'));
    await h.say('echo two', { threadKey: first.thread, mustExist: true });
    await h.say('echo three', { threadKey: first.thread, mustExist: true });
    const events = await h.untilDone(first.thread, 2);
    const replies = agentTexts(events);
    // The two late messages were one turn: both ran, in order, after the first.
    expect(replies.map((r) => r.split('\n')[0])).toEqual(['one', 'two', 'three']);
    const turns = await h.store.db.selectFrom('turns').select(['seq', 'status']).where('session_id', '=', first.thread).orderBy('seq').execute();
    expect(turns.map((t) => t.status)).toEqual(['done', 'done']);
  });

  // Generous: on a loaded CI machine the sandbox's start alone can take seconds; nothing here is timed.
  it('cancels a running turn at once and says who stopped it', { timeout: 120_000 }, async () => {
    const bob = await h.member(`bob-${name}`);
    const { thread } = await h.say('sleep 30; echo never');
    await h.until('running', async () => (await h.events(thread)).some((e) => e.type === 'status' && e.data.state === 'running'));
    await h.until('the command started', async () => h.layer.sandboxes.liveCount > 0);
    expect(await h.layer.service.cancel(thread, { id: bob.id, name: bob.displayName })).toEqual({ cancelled: true });
    // Stopped, not finished: had the command run its 30 s, "never" would be in the reply (no clock is read here).
    const events = await h.untilDone(thread, 1, 60_000);
    expect(events.find((e) => e.type === 'done')!.data.status).toBe('cancelled');
    expect(systemTexts(events).at(-1)).toBe(`Stopped by ${bob.displayName}.`);
    expect(agentTexts(events).join('')).not.toContain('never');
    // Cancelling again: nothing runs.
    expect(await h.layer.service.cancel(thread, { id: bob.id, name: bob.displayName })).toEqual({ cancelled: false });
  });

  it('a duplicate delivery (same dedupe key, even concurrent) is one message, one turn, one reply', async () => {
    const key = `web:${h.owner.id}:dup-${name}`;
    const results = await Promise.all(Array.from({ length: 5 }, () => h.say('echo once', { dedupeKey: key })));
    const threads = new Set(results.map((r) => r.thread));
    expect(threads.size).toBe(1);
    expect(new Set(results.map((r) => r.message)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    const thread = results[0]!.thread;
    const events = await h.untilDone(thread);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(agentTexts(await h.events(thread))).toHaveLength(1);
    expect(events.filter((e) => e.type === 'message' && (e.data.author as { kind: string }).kind === 'member')).toHaveLength(1);
  });

  it('caps what the agent posts and rate-limits progress (sandbox output is data)', async () => {
    const { thread } = await h.say("head -c 300000 /dev/zero | tr '\\0' x; printf '\\033]52;c;SGVsbG8=\\007\\033[2J@channel done\\n'");
    const events = await h.untilDone(thread);
    const reply = agentTexts(events)[0]!;
    expect(Buffer.byteLength(reply)).toBeLessThanOrEqual(2048);
    expect(reply).toMatch(/output cut: the last .* of 29\d(\.\d)? KiB shown/);
    // No escape sequences and no mass mention survive into the thread.
    const all = events.map((e) => JSON.stringify(e.data)).join('');
    expect(all).not.toMatch(/\\u001b|\\u0007/);
    expect(reply).toContain('@\u200bchannel done');
    const progress = events.filter((e) => e.type === 'progress').map((e) => e.data.text as string).join('');
    // Far less than 300 KB reached the thread as progress: the rest is said to be left out.
    expect(Buffer.byteLength(progress)).toBeLessThan(100_000);
    expect(progress).toMatch(/of output not shown: over the progress rate limit/);
  });

  it('copies the engine state out after each turn and restores it into a rebuilt sandbox', async () => {
    const engineChannel = await h.channel(`counter-${name}`);
    await h.store.db.updateTable('channels').set({ engine: 'counter' }).where('id', '=', engineChannel).execute();
    const place = { kind: 'channel' as const, channelId: engineChannel };
    const first = await h.say('go', { place });
    expect(agentTexts(await h.untilDone(first.thread))).toEqual(['turn 1 restored=false']);
    expect((await loadEngineState(h.store.db, first.thread))?.version).toBe(1);
    await h.say('go', { place, threadKey: first.thread, mustExist: true });
    expect(agentTexts(await h.untilDone(first.thread, 2))[1]).toBe('turn 2 restored=false');
    // Released (as after agent.idleSeconds): processes and files gone; the state is the store's.
    await h.layer.sandboxes.release(first.thread);
    await h.say('go', { place, threadKey: first.thread, mustExist: true });
    expect(agentTexts(await h.untilDone(first.thread, 3))[2]).toBe('turn 3 restored=true');
    const sandboxEvents = [];
    for await (const e of h.audit.query({ session: first.thread, type: 'sandbox' })) sandboxEvents.push(e.action);
    expect(sandboxEvents).toEqual(['create', 'release', 'rebuild']);
    expect((await loadEngineState(h.store.db, first.thread))?.version).toBe(3);
  });

  it('records the chain: invocation by the member, session, sandbox, turns — with the identity that acted', async () => {
    const carol = await h.member(`carol-${name}`);
    const { thread } = await h.say('true', { by: carol });
    await h.untilDone(thread);
    const events = [];
    for await (const e of h.audit.query({ session: thread })) events.push(e);
    const invocation = events.find((e) => e.type === 'invocation')!;
    expect(invocation).toMatchObject({ actor: carol.id, outcome: 'accepted', identity: 'agent', channel: h.channelId });
    expect(events.map((e) => `${e.type}:${String(e.action ?? e.outcome)}`)).toEqual(
      expect.arrayContaining(['session:create', 'invocation:accepted', 'session:turn-start', 'sandbox:create', 'session:turn-end']),
    );
  });

  it('refuses what the access check refuses, and says why in the thread', async () => {
    await h.store.db.updateTable('orgs').set({ dms_allowed: 0 }).where('id', '=', h.orgId).execute();
    try {
      const result = await h.layer.service.invoke({ workspaceId: h.workspaceId, place: { kind: 'dm', memberId: h.owner.id }, memberId: h.owner.id, text: 'hi', trigger: 'message' });
      expect(result).toMatchObject({ status: 'refused', reason: 'dms-off' });
      const thread = (result as { thread: string }).thread;
      expect(systemTexts(await h.events(thread))[0]).toMatch(/turned off direct messages/);
      const denied = [];
      for await (const e of h.audit.query({ type: 'access-denied', session: thread })) denied.push(e);
      expect(denied[0]).toMatchObject({ reason: 'dms-off', actor: h.owner.id });
      expect(await h.store.db.selectFrom('turns').select('id').where('session_id', '=', thread).execute()).toEqual([]);
    } finally {
      await h.store.db.updateTable('orgs').set({ dms_allowed: 1 }).where('id', '=', h.orgId).execute();
    }
    const guest = await h.member(`noaccount-${name}`, { hasAccount: false });
    await h.store.db.updateTable('orgs').set({ member_access: 'members' }).where('id', '=', h.orgId).execute();
    try {
      const result = await h.layer.service.invoke({ workspaceId: h.workspaceId, place: { kind: 'channel', channelId: h.channelId }, memberId: guest.id, text: 'hi', trigger: 'message' });
      expect(result).toMatchObject({ status: 'refused', reason: 'not-a-member', visibility: 'private' });
    } finally {
      await h.store.db.updateTable('orgs').set({ member_access: 'anyone' }).where('id', '=', h.orgId).execute();
    }
    // Someone else's DM is never one's own.
    const dave = await h.member(`dave-${name}`);
    await expect(h.layer.service.invoke({ workspaceId: h.workspaceId, place: { kind: 'dm', memberId: dave.id }, memberId: h.owner.id, text: 'hi', trigger: 'message' })).rejects.toThrow(/belongs to the member/);
  });

  it('rejects empty and oversized text, and unknown threads, naming the problem', async () => {
    await expect(h.say('   ')).rejects.toThrow(/text: expected a message/);
    await expect(h.say('x'.repeat(40 * 1024))).rejects.toThrow(/over the 32768-byte limit/);
    await expect(h.say('hi', { threadKey: 'no-such-thread', mustExist: true })).rejects.toThrow(/thread no-such-thread in this channel not found/);
  });
});

describe.each(BACKENDS)('blocked-host notices (%s)', (name) => {
  let h: SessionHarness;

  beforeAll(async () => {
    h = await startSessions(name);
  }, 60_000);
  afterAll(async () => h?.close());

  it('tells the thread once per host per turn what was blocked and what would allow it', async () => {
    const { thread } = await h.say(
      'for i in 1 2 3 4 5; do curl -s -o /dev/null -w "%{http_code} " http://blocked-one.example/x?token=SECRET; done; curl -s -o /dev/null https://blocked-two.example/; echo',
    );
    const events = await h.untilDone(thread);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const notices = (await h.events(thread)).filter((e) => e.type === 'notice');
    expect(notices.map((n) => n.data.host).sort()).toEqual(['blocked-one.example', 'blocked-two.example']);
    const one = notices.find((n) => n.data.host === 'blocked-one.example')!;
    expect(one.data.text).toMatch(/^Blocked a request to blocked-one\.example: .+\. To allow it, ask an admin to add blocked-one\.example to a bundle attached to #general/);
    expect(JSON.stringify(notices)).not.toContain('SECRET');
    expect(agentTexts(events)[0]).toMatch(/^403 403 403 403 403/);
    // A new turn may be told again (the proxy's feed says a host at most once a second per session).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await h.say('curl -s -o /dev/null http://blocked-one.example/', { threadKey: thread, mustExist: true });
    await h.untilDone(thread, 2);
    await h.until('a second notice', async () => (await h.events(thread)).filter((e) => e.type === 'notice').length === 3 || undefined, 10_000);
  });

  it('in a DM, points at personal connectors', async () => {
    const result = await h.layer.service.invoke({ workspaceId: h.workspaceId, place: { kind: 'dm', memberId: h.owner.id }, memberId: h.owner.id, text: 'curl -s -o /dev/null http://elsewhere.example/', trigger: 'message' });
    const thread = (result as { thread: string }).thread;
    await h.untilDone(thread);
    const notice = await h.until('a notice', async () => (await h.events(thread)).find((e) => e.type === 'notice'), 10_000);
    expect(notice.data.text).toMatch(/add a personal connector for elsewhere\.example/);
  });
});
