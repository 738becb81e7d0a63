import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import type { Invocation } from '../../src/sessions/invocation.js';
import { MEMORY_CUT_LINE, MEMORY_MAX_BYTES, MEMORY_PATH } from '../../src/sessions/channel-memory.js';
import { latestMemory, memoryHistory } from '../../src/sessions/memory-repo.js';
import type { Member } from '../../src/access/model.js';
import { BACKENDS } from '../helpers/backends.js';
import { agentTexts, logger, startSessions, type SessionHarness } from './harness.js';

/**
 * Channel memory through the real session layer (proxy daemon, bubblewrap,
 * both stores), with the shell engine as the agent: what one thread writes
 * to ~/.tagbox/memory.md, the channel's next thread finds; other channels and
 * other members' DMs do not; too much is cut, with a notice; a link in its
 * place is refused and changes nothing.
 */
describe.each(BACKENDS)('channel memory across sessions (%s)', (name) => {
  let h: SessionHarness;
  let alice: Member;
  let bob: Member;

  beforeAll(async () => {
    h = await startSessions(name, { maxReplyBytes: 8192 });
    alice = await h.member(`alice-${name}`);
    bob = await h.member(`bob-${name}`);
  }, 60_000);
  afterAll(async () => h?.close());

  /** Runs `command` in a new thread (or `thread`) and gives the thread's events and its last reply. */
  const turn = async (command: string, options: Partial<Invocation> & { by?: Member } = {}) => {
    const before = options.threadKey ? (await h.events(options.threadKey)).filter((e) => e.type === 'done').length : 0;
    const { thread } = await h.say(command, { ...options, ...(options.threadKey ? { mustExist: true } : {}) });
    const events = await h.untilDone(thread, before + 1);
    return { thread, events, reply: agentTexts(events).at(-1)! };
  };
  const dm = (member: Member) => ({ place: { kind: 'dm' as const, memberId: member.id }, by: member });
  const memoryEvents = async (scope: string) => {
    const events: AuditEvent[] = [];
    for await (const e of h.audit.query({ type: 'memory' })) if (e.scope === scope) events.push(e);
    return events;
  };

  it("what one thread writes, the channel's next thread starts with; other channels do not see it", async () => {
    const scope = `channel:${h.channelId}`;
    const first = await turn(`echo "remember: X" >> ~/.tagbox/memory.md && echo written`);
    expect(first.reply).toMatch(/^written\n\[exit code 0\]$/);
    const saved = (await latestMemory(h.store.db, scope))!;
    expect(saved).toMatchObject({ version: 1, content: 'remember: X\n', bytes: 12, sessionId: first.thread, baseVersion: undefined });
    // An ordinary update says nothing in the thread.
    expect(first.events.filter((e) => e.type === 'notice')).toEqual([]);

    const next = await turn(`cat ${MEMORY_PATH}`);
    expect(next.thread).not.toBe(first.thread);
    expect(next.reply).toBe('remember: X\n[exit code 0]');
    // Read but not changed: no new version.
    expect((await memoryHistory(h.store.db, scope)).map((v) => v.version)).toEqual([1]);

    const other = await h.channel(`elsewhere-${name}`);
    const there = await turn(`cat ~/.tagbox/memory.md; echo "[$(wc -c < ~/.tagbox/memory.md)]"`, { place: { kind: 'channel', channelId: other } });
    expect(there.reply).toBe('[0]\n[exit code 0]');

    // The same thread's next turn sees what another thread saved meanwhile (copied in before every turn).
    await turn(`echo "remember: Y" >> ~/.tagbox/memory.md`);
    const again = await turn('cat ~/.tagbox/memory.md', { threadKey: next.thread });
    expect(again.reply).toBe('remember: X\nremember: Y\n[exit code 0]');

    const updates = await memoryEvents(scope);
    expect(updates.map((e) => [e.action, e.outcome, e.version, e.bytes])).toEqual([
      ['update', 'ok', 1, 12],
      ['update', 'ok', 2, 24],
    ]);
    expect(updates[0]).toMatchObject({ session: first.thread, channel: h.channelId, actor: 'system', turn: expect.any(String) });
    expect(updates[1]).toMatchObject({ baseVersion: 1 });
    expect(JSON.stringify(updates)).not.toContain('remember');
  });

  it("keeps a DM's memory to its member: neither the channel nor another member's DM sees it", async () => {
    await turn(`echo "alice: the plan" > ~/.tagbox/memory.md`, dm(alice));
    expect((await latestMemory(h.store.db, `dm:${alice.id}`))!.content).toBe('alice: the plan\n');
    expect((await turn('cat ~/.tagbox/memory.md', dm(alice))).reply).toBe('alice: the plan\n[exit code 0]');
    expect((await turn('cat ~/.tagbox/memory.md; echo end', dm(bob))).reply).toBe('end\n[exit code 0]');
    expect((await turn('cat ~/.tagbox/memory.md', { by: alice })).reply).not.toContain('alice: the plan');
  });

  it('cuts a memory over 64 KiB at a line boundary, saves that, and tells the thread', async () => {
    const channel = await h.channel(`big-${name}`);
    const where = { place: { kind: 'channel' as const, channelId: channel } };
    const big = await turn(`yes 'a line of notes' | head -c 100000 > ~/.tagbox/memory.md; echo done`, where);
    const saved = (await latestMemory(h.store.db, `channel:${channel}`))!;
    expect(saved.bytes).toBeLessThanOrEqual(MEMORY_MAX_BYTES);
    expect(saved.content.endsWith(`a line of notes\n${MEMORY_CUT_LINE}\n`)).toBe(true);
    const notices = big.events.filter((e) => e.type === 'notice');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.data).toMatchObject({ kind: 'memory', text: expect.stringMatching(/over the 64 KiB cap: it was saved cut at a line boundary/) });
    // The notice comes before the turn's done.
    expect(big.events.findIndex((e) => e.type === 'notice')).toBeLessThan(big.events.findIndex((e) => e.type === 'done'));
    expect((await memoryEvents(`channel:${channel}`))[0]).toMatchObject({ action: 'update', cut: true, bytes: saved.bytes });
    // The next thread starts with the cut file; untouched, it is not saved again.
    const next = await turn(`tail -n 1 ~/.tagbox/memory.md; wc -c < ~/.tagbox/memory.md`, where);
    expect(next.reply).toBe(`${MEMORY_CUT_LINE}\n${saved.bytes}\n[exit code 0]`);
    expect(next.events.filter((e) => e.type === 'notice')).toEqual([]);
    expect(await memoryHistory(h.store.db, `channel:${channel}`)).toHaveLength(1);
  });

  it('refuses a link put in place of the file: the stored memory stays, a warning is logged, the next turn gets the file back', async () => {
    const channel = await h.channel(`links-${name}`);
    const scope = `channel:${channel}`;
    const where = { place: { kind: 'channel' as const, channelId: channel } };
    await turn(`echo "kept: 1" > ~/.tagbox/memory.md`, where);
    const warn = vi.spyOn(logger, 'warn');
    try {
      for (const target of ['/etc/passwd', '/workspace/other-file']) {
        const attack = await turn(`echo "not memory" > /workspace/other-file; rm -f ~/.tagbox/memory.md; ln -s ${target} ~/.tagbox/memory.md; echo linked`, where);
        expect(attack.reply).toMatch(/^linked\n/);
        expect(await memoryHistory(h.store.db, scope)).toHaveLength(1);
        expect((await latestMemory(h.store.db, scope))!.content).toBe('kept: 1\n');
        const notice = attack.events.find((e) => e.type === 'notice');
        expect(notice?.data).toMatchObject({ kind: 'memory', text: expect.stringMatching(/was not saved: .* symbolic link/) });
      }
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ scope, reason: expect.stringMatching(/symbolic link/) }), expect.stringMatching(/channel memory not saved/));
    } finally {
      warn.mockRestore();
    }
    const refused = (await memoryEvents(scope)).filter((e) => e.outcome === 'refused');
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ action: 'update', reason: expect.stringMatching(/symbolic link/), channel });
    // A directory linked in place of ~/.tagbox is refused too.
    const linked = await turn(`rm -rf ~/.tagbox; mkdir -p /workspace/d; echo "theirs" > /workspace/d/memory.md; ln -s /workspace/d ~/.tagbox`, where);
    expect((await latestMemory(h.store.db, scope))!.content).toBe('kept: 1\n');
    // The next turn (same sandbox) finds the stored file in place again, not through the link.
    const after = await turn(`[ -L ~/.tagbox ] && echo link; cat ~/.tagbox/memory.md; cat /workspace/d/memory.md`, { ...where, threadKey: linked.thread });
    expect(after.reply).toBe('kept: 1\ntheirs\n[exit code 0]');
  });

  it('saves an emptied memory as a new, empty version', async () => {
    const channel = await h.channel(`empty-${name}`);
    const where = { place: { kind: 'channel' as const, channelId: channel } };
    await turn('echo "short-lived" > ~/.tagbox/memory.md', where);
    await turn('rm ~/.tagbox/memory.md', where);
    const latest = (await latestMemory(h.store.db, `channel:${channel}`))!;
    expect(latest).toMatchObject({ version: 2, content: '', bytes: 0, baseVersion: 1 });
    expect((await turn('cat ~/.tagbox/memory.md; echo "[end]"', where)).reply).toBe('[end]\n[exit code 0]');
  });
});
