import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { answered, newMember, readEvents, startUp, systemTexts, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * Issue 10, "Done when" 4, through the real `tagbox up`: every refusal says
 * why — as a 403 with the reason, and in the thread when it is the thread's
 * to see — and bad input is a 400 naming what was wrong. Each refusal is
 * checked against an accepted control, so a 403 for some other reason fails.
 */
describe('refusals and bad input on the chat API (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let up: Up;
  let owner: string;
  let workspaceId: string;
  let generalId: string;
  let ada: { id: string; token: string };

  beforeAll(async () => {
    backend = await createTestBackend('sqlite');
    up = await startUp(backend.env);
    owner = up.token!;
    ({ workspaceId, generalId } = await webWorkspace(up, owner));
    ada = await newMember(up, owner, workspaceId, 'Ada');
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  const post = (token: string, path: string, body: unknown, headers?: Record<string, string>) => up.api(token, 'POST', path, body, headers);

  it('DMs off: 403 naming the reason, a system message in the thread, audited; back on, the DM works', async () => {
    expect((await up.api(owner, 'PATCH', '/org', { dmsAllowed: false })).status).toBe(200);
    try {
      const refused = await post(ada.token, '/dms/messages', { text: 'echo hi' });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'refused', reason: 'dms-off' });
      expect(refused.body.error.message).toMatch(/turned off direct messages/);
      const thread = refused.body.thread as string;
      const view = await up.api(ada.token, 'GET', `/threads/${thread}`);
      expect(view.body.messages.map((m: { author: { kind: string }; text: string }) => [m.author.kind, m.text])).toEqual([['system', refused.body.error.message]]);
      const denied = (await up.api(owner, 'GET', `/audit?type=access-denied&actor=${ada.id}`)).body.events;
      expect(denied).toEqual([expect.objectContaining({ reason: 'dms-off', session: thread, place: 'dm', outcome: 'denied' })]);
    } finally {
      expect((await up.api(owner, 'PATCH', '/org', { dmsAllowed: true })).status).toBe(200);
    }
    const accepted = await post(ada.token, '/dms/messages', { text: 'echo dm-on' });
    expect(accepted.status).toBe(202);
  });

  it('memberAccess "members": a member without an account is refused with the reason; one with an account is not', async () => {
    const guest = await newMember(up, owner, workspaceId, 'Nia', { hasAccount: false });
    // Under the default ("anyone") she may invoke the agent.
    expect((await post(guest.token, `/channels/${generalId}/messages`, { text: 'echo before' })).status).toBe(202);
    expect((await up.api(owner, 'PATCH', '/org', { memberAccess: 'members' })).status).toBe(200);
    try {
      const refused = await post(guest.token, `/channels/${generalId}/messages`, { text: 'echo hi' });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({ code: 'refused', reason: 'not-a-member' });
      expect(refused.body.error.message).toMatch(/Only members of the organisation/);
      // Said to her alone: no thread of the channel shows it.
      expect(refused.body.thread).toBeUndefined();
      expect((await post(ada.token, `/channels/${generalId}/messages`, { text: 'echo member' })).status).toBe(202);
    } finally {
      expect((await up.api(owner, 'PATCH', '/org', { memberAccess: 'anyone' })).status).toBe(200);
    }
  });

  it('a private channel: 403 for a non-member naming the channel; its member may post', async () => {
    const created = await up.api(owner, 'POST', `/workspaces/${workspaceId}/channels`, { externalId: 'secret-plans', name: 'secret-plans', isPrivate: true });
    expect(created.status).toBe(201);
    const channel = created.body.id as string;
    const refused = await post(ada.token, `/channels/${channel}/messages`, { text: 'echo hi' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/"secret-plans" is private/);
    // Nor can she read it.
    expect((await up.api(ada.token, 'GET', '/channels')).body.map((c: { id: string }) => c.id)).not.toContain(channel);
    expect((await post(owner, `/channels/${channel}/members`, { memberId: ada.id })).status).toBe(201);
    const accepted = await post(ada.token, `/channels/${channel}/messages`, { text: 'echo inside' });
    expect(accepted.status).toBe(202);
    const events = await readEvents(up, ada.token, accepted.body.thread, answered(accepted.body.message));
    expect(events.find((e) => e.event === 'done')?.data.status).toBe('done');
    expect(systemTexts(events)).toEqual([]);
  });

  it('unknown channel and thread: 404 naming them', async () => {
    const channel = await post(ada.token, '/channels/no-such-channel/messages', { text: 'echo hi' });
    expect(channel.status).toBe(404);
    expect(channel.body.error.message).toContain('"no-such-channel"');
    const thread = await post(ada.token, `/channels/${generalId}/messages`, { text: 'echo hi', thread: 'no-such-thread' });
    expect(thread.status).toBe(404);
    expect(thread.body.error.message).toContain('no-such-thread');
    expect((await up.api(ada.token, 'GET', '/threads/no-such-thread')).status).toBe(404);
    expect((await post(ada.token, '/threads/no-such-thread/cancel', undefined)).status).toBe(404);
  });

  it('bad input: 400 naming the problem (413 past the body limit), and nothing is posted', async () => {
    const path = `/channels/${generalId}/messages`;
    const cases: Array<{ body: unknown; headers?: Record<string, string>; message: RegExp; status?: number }> = [
      { body: { text: '' }, message: /^text: expected a message, got an empty one/ },
      { body: { text: '   \n ' }, message: /^text: expected a message/ },
      { body: { text: 'x'.repeat(32 * 1024 + 1) }, message: /^text: 32769 bytes is over the 32768-byte limit \(agent\.maxMessageBytes\)/ },
      { body: {}, message: /^body\.text: / },
      { body: { text: 'echo', colour: 'red' }, message: /colour/ },
      { body: { text: 42 }, message: /^body\.text: / },
      { body: '{"text": "echo hi"', message: /JSON/i },
      { body: { text: 'echo hi' }, headers: { 'idempotency-key': 'has spaces in it' }, message: /^Idempotency-Key: / },
    ];
    const before = (await up.api(owner, 'GET', `/audit?type=invocation&actor=${ada.id}`)).body.events.length;
    for (const c of cases) {
      const res = await post(ada.token, path, c.body, c.headers);
      expect(res.status, `${JSON.stringify(c.body).slice(0, 60)}: ${res.text.slice(0, 200)}`).toBe(c.status ?? 400);
      expect(res.body.error.message).toMatch(c.message);
    }
    // Past the server's body limit the request is not even read: 413, and the connection may close under the upload.
    const oversized = await postUnread(`${up.url}/api/v1${path}`, ada.token, JSON.stringify({ text: 'x'.repeat(1024 * 1024 + 1) }));
    expect(oversized.status).toBe(413);
    expect(JSON.parse(oversized.text).error.message).toMatch(/body is too large/);
    expect((await up.api(owner, 'GET', `/audit?type=invocation&actor=${ada.id}`)).body.events.length).toBe(before);
  });
});

/** A POST whose answer may come (and the connection close) before its body is sent: the answer is what counts. */
function postUnread(url: string, token: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(url, { method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(body);
  });
}
