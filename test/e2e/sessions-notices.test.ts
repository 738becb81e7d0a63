import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoUpstream } from '../fixtures/echo-upstream.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { answered, auditEvents, eventsOfTurn, newMember, readEvents, startUp, turnOfMessage, until, webWorkspace, type ThreadEvent, type Up, E2E_TIMEOUT, echoUpstreamFor } from './up-harness.js';

/**
 * Issue 10, "Done when" 10: a blocked request of a session posts one `notice`
 * in its thread per host per turn, naming the host and what would allow it.
 * The proxy daemon reports each blocked decision on its control socket; the
 * turn runner turns them into notices.
 */
describe('blocked-host notices in the thread (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let echo: EchoUpstream;
  let up: Up;
  let generalId: string;
  let owner: string;
  let ada: { id: string; token: string };

  beforeAll(async () => {
    // Mapped, so that only the policy can be what stops them.
    const upstream = await echoUpstreamFor(['unlisted.echo.test', 'other.echo.test']);
    echo = upstream.echo;
    backend = await createTestBackend('sqlite');
    up = await startUp({ ...backend.env, ...upstream.env });
    owner = up.token!;
    const web = await webWorkspace(up, owner);
    generalId = web.generalId;
    ada = await newMember(up, owner, web.workspaceId, 'Ada');
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await echo?.close();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  async function turn(text: string, thread?: string): Promise<{ thread: string; turn: string; events: ThreadEvent[] }> {
    const posted = await up.api(ada.token, 'POST', `/channels/${generalId}/messages`, { text, ...(thread ? { thread } : {}) });
    expect(posted.status, posted.text).toBe(202);
    const { message } = posted.body as { thread: string; message: string };
    // Done, and noticed: a notice that never comes is the failure this waits out.
    const all = await readEvents(up, ada.token, posted.body.thread, (events) => {
      const t = turnOfMessage(events, message);
      return answered(message)(events) && events.some((e) => e.event === 'notice' && e.data.turn === t);
    });
    const id = turnOfMessage(all, message)!;
    return { thread: posted.body.thread, turn: id, events: eventsOfTurn(all, id) };
  }

  const notices = (events: ThreadEvent[]) => events.filter((e) => e.event === 'notice').map((e) => e.data as { host: string; port: number; text: string });
  const curl5 = (host: string) => `for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{http_connect} ' https://${host}/x$i; done`;

  it('five blocked requests to one host in a turn: one notice naming the host and how to allow it', async () => {
    const seen = echo.received.length;
    const first = await turn(curl5('unlisted.echo.test'));
    expect(notices(first.events)).toEqual([expect.objectContaining({ host: 'unlisted.echo.test', port: 443 })]);
    expect(notices(first.events)[0]!.text).toMatch(/^Blocked a request to unlisted\.echo\.test: .*ask an admin to add unlisted\.echo\.test to a bundle attached to #general/);
    expect(echo.received.length).toBe(seen);
    // Each of the five was decided and audited, with the thread as its session.
    const blocked = await until('five egress events', async () => {
      const events = (await auditEvents(up, owner, { session: first.thread, type: 'egress' })).filter((e) => e.host === 'unlisted.echo.test');
      return events.length >= 5 ? events : undefined;
    });
    expect(blocked.map((e) => e.outcome)).toEqual(['blocked', 'blocked', 'blocked', 'blocked', 'blocked']);

    // Per turn: the next turn is told again, once per host (the proxy's feed names a host at most once a second per session).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await turn(`${curl5('unlisted.echo.test')}; ${curl5('other.echo.test')}`, first.thread);
    expect(notices(second.events).map((n) => n.host).sort()).toEqual(['other.echo.test', 'unlisted.echo.test']);
  });
});
