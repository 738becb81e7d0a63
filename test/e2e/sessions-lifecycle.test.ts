import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { processesMatching } from './processes.js';
import { agentTexts, answered, auditEvents, eventsOfTurn, newMember, readEvents, startUp, systemTexts, turnOfMessage, until, webWorkspace, type ThreadEvent, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * Issue 10, "Done when" 5, 7, 8 and 9, through the real `tagbox up`: a
 * session outlives its sandbox (idle release, rebuild, files gone, thread
 * whole), a duplicate delivery is one message and one reply, a cancel stops a
 * long command at once, and the org's sandbox cap queues the rest and says so.
 */
describe.each(BACKENDS)('session lifecycle (%s)', { timeout: E2E_TIMEOUT }, (backendName) => {
  let backend: TestBackend;
  let up: Up;
  let owner: string;
  let workspaceId: string;
  let generalId: string;
  let ada: { id: string; token: string };
  let bob: { id: string; token: string };

  beforeAll(async () => {
    backend = await createTestBackend(backendName);
    up = await startUp({ ...backend.env, TAGBOX_AGENT_IDLE_SECONDS: '2' });
    owner = up.token!;
    ({ workspaceId, generalId } = await webWorkspace(up, owner));
    ada = await newMember(up, owner, workspaceId, 'Ada');
    bob = await newMember(up, owner, workspaceId, 'Bob');
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  async function send(token: string, text: string, thread?: string) {
    const posted = await up.api(token, 'POST', `/channels/${generalId}/messages`, { text, ...(thread ? { thread } : {}) });
    expect(posted.status, posted.text).toBe(202);
    return posted.body as { thread: string; message: string };
  }
  async function reply(token: string, posted: { thread: string; message: string }): Promise<ThreadEvent[]> {
    const all = await readEvents(up, token, posted.thread, answered(posted.message));
    return eventsOfTurn(all, turnOfMessage(all, posted.message)!);
  }

  it('idle release, then rebuild: the files are gone, the thread keeps every message', async () => {
    const first = await send(ada.token, 'echo kept > /workspace/note && cat /workspace/note');
    expect(agentTexts(await reply(ada.token, first))).toEqual(['kept\n[exit code 0]']);
    const released = await until('the idle sandbox to be released', async () => {
      const events = await auditEvents(up, owner, { session: first.thread, type: 'sandbox' });
      return events.some((e) => e.action === 'release') ? events : undefined;
    });
    expect(released.map((e) => e.action)).toEqual(['create', 'release']);
    expect((await up.api(ada.token, 'GET', `/threads/${first.thread}`)).body.session).toMatchObject({ state: 'idle', sandbox: 'released' });

    const second = await send(ada.token, 'test -e /workspace/note && echo still-there || echo gone', first.thread);
    expect(agentTexts(await reply(ada.token, second))).toEqual(['gone\n[exit code 0]']);
    const sandboxes = await auditEvents(up, owner, { session: first.thread, type: 'sandbox' });
    expect(sandboxes.map((e) => e.action)).toEqual(['create', 'release', 'rebuild']);
    expect(sandboxes[2].sandbox).not.toBe(sandboxes[0].sandbox);

    const view = await up.api(ada.token, 'GET', `/threads/${first.thread}`);
    expect(view.body.messages.map((m: { author: { kind: string }; text: string }) => `${m.author.kind}: ${m.text}`)).toEqual([
      'member: echo kept > /workspace/note && cat /workspace/note',
      'agent: kept\n[exit code 0]',
      'member: test -e /workspace/note && echo still-there || echo gone',
      'agent: gone\n[exit code 0]',
    ]);
  });

  it('the same Idempotency-Key twice, and 5 times at once: one message, one turn, one reply', async () => {
    // A member of her own, so that everything she caused can be counted.
    const cy = await newMember(up, owner, workspaceId, `Cy-${backendName}`);
    const headers = { 'idempotency-key': 'retry-1' };
    const path = `/channels/${generalId}/messages`;
    const once = await up.api(cy.token, 'POST', path, { text: 'echo once' }, headers);
    const again = await up.api(cy.token, 'POST', path, { text: 'echo once' }, headers);
    expect(once.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ thread: once.body.thread, message: once.body.message, duplicate: true });

    const burst = await Promise.all(Array.from({ length: 5 }, () => up.api(cy.token, 'POST', path, { text: 'echo burst' }, { 'idempotency-key': 'burst-1' })));
    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    const firstOfBurst = burst.find((r) => r.status === 202)!.body as { thread: string; message: string };
    for (const r of burst) expect(r.body).toMatchObject({ thread: firstOfBurst.thread, message: firstOfBurst.message });

    for (const posted of [once.body, firstOfBurst]) {
      await reply(cy.token, posted);
      // A later turn in the same thread is the barrier: anything run twice would show before it ends.
      const barrier = await send(cy.token, 'echo barrier', posted.thread);
      const all = await readEvents(up, cy.token, posted.thread, answered(barrier.message));
      expect(all.filter((e) => e.event === 'message').map((e) => `${e.data.author.kind}: ${e.data.text}`)).toEqual([
        `member: ${posted === once.body ? 'echo once' : 'echo burst'}`,
        `agent: ${posted === once.body ? 'once' : 'burst'}\n[exit code 0]`,
        'member: echo barrier',
        'agent: barrier\n[exit code 0]',
      ]);
      expect(all.filter((e) => e.event === 'done')).toHaveLength(2);
    }
    // Two threads, two invocations each (the message and the barrier), and no stray session of a losing duplicate.
    const audit = await auditEvents(up, owner, { actor: cy.id });
    expect(audit.filter((e) => e.type === 'session' && e.action === 'create')).toHaveLength(2);
    expect(audit.filter((e) => e.type === 'invocation')).toHaveLength(4);
    expect(audit.filter((e) => e.type === 'session' && e.action === 'turn-start')).toHaveLength(4);
  });

  it('cancel: anyone in the thread stops a long command at once; the thread says who; the thread goes on', async () => {
    // An odd duration names this command among the host's processes.
    const posted = await send(ada.token, 'echo started; sleep 617; echo never');
    await readEvents(up, ada.token, posted.thread, (events) => events.some((e) => e.event === 'progress' && String(e.data.text).includes('started')));
    expect(processesMatching(/^sleep 617$/)).toHaveLength(1);

    const cancelled = await up.api(bob.token, 'POST', `/threads/${posted.thread}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toEqual({ cancelled: true });
    // Generous, and far below the command's 617 s: the stop did not wait for it.
    const turn = await reply(ada.token, posted);
    expect(turn.find((e) => e.event === 'done')?.data.status).toBe('cancelled');
    expect(systemTexts(turn)).toEqual(['Stopped by Bob.']);
    expect(agentTexts(turn).join('\n')).not.toContain('never');
    await until('the command to be gone', () => (processesMatching(/^sleep 617$/).length === 0 ? true : undefined));
    expect((await auditEvents(up, owner, { session: posted.thread, type: 'session' })).find((e) => e.action === 'cancel')).toMatchObject({ actor: bob.id });

    // Nothing runs now: nothing to cancel. And the thread takes the next message.
    expect((await up.api(ada.token, 'POST', `/threads/${posted.thread}/cancel`)).body).toEqual({ cancelled: false });
    const next = await send(ada.token, 'echo after', posted.thread);
    expect(agentTexts(await reply(ada.token, next))).toEqual(['after\n[exit code 0]']);
  });
});

describe('the org sandbox cap (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let up: Up;
  let owner: string;
  let generalId: string;
  let ada: { id: string; token: string };

  beforeAll(async () => {
    backend = await createTestBackend('sqlite');
    up = await startUp({ ...backend.env, TAGBOX_AGENT_MAX_SANDBOXES_PER_ORG: '1' });
    owner = up.token!;
    const web = await webWorkspace(up, owner);
    generalId = web.generalId;
    ada = await newMember(up, owner, web.workspaceId, 'Ada');
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it('a second thread waits, told how many are ahead, and runs once the first sandbox is released', async () => {
    const post = async (text: string) => (await up.api(ada.token, 'POST', `/channels/${generalId}/messages`, { text })).body as { thread: string; message: string };
    const first = await post('echo first-start; sleep 3; echo first-end');
    await readEvents(up, ada.token, first.thread, (events) => events.some((e) => e.event === 'progress' && String(e.data.text).includes('first-start')));
    const second = await post('echo second');

    const events = await readEvents(up, ada.token, second.thread, answered(second.message));
    const statuses = events.filter((e) => e.event === 'status').map((e) => e.data);
    expect(statuses[0]).toMatchObject({ state: 'queued', ahead: 0 });
    expect(statuses[0].text).toMatch(/^queued: 0 ahead \(all 1 of the org's sandboxes are busy\)/);
    expect(statuses.at(-1)).toMatchObject({ state: 'running' });
    expect(agentTexts(events)).toEqual(['second\n[exit code 0]']);
    const firstTurn = await readEvents(up, ada.token, first.thread, answered(first.message));
    expect(agentTexts(firstTurn)).toEqual(['first-start\nfirst-end\n[exit code 0]']);

    // Never two at once: the first sandbox was released (evicted, idle) before the second was built.
    const sandbox = await auditEvents(up, owner, { type: 'sandbox' });
    const order = sandbox.map((e) => `${e.session === first.thread ? 'first' : 'second'} ${e.action}`);
    expect(order).toEqual(['first create', 'first release', 'second create']);
  });
});
