import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemberIn } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createWorkspace } from '../../src/access/workspaces-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';
import { browserWith, send, signIn, tokenOf, type Browser } from './web-client.js';

const LINK_INVALID = 'this sign-in link is not valid: it was used, it expired, or it was never issued; ask an admin for a new one';
const CSRF = 'missing or wrong X-CSRF-Token header: reload the page';

describe.each(BACKENDS)('web sign-in: links, cookie sessions, CSRF (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  const secrets: string[] = [];

  /** A fresh link for memberId, minted by the Owner through the API. */
  const linkFor = async (memberId: string, by = h.ownerToken): Promise<string> => {
    const res = await h.api(by, 'POST', `/api/v1/members/${memberId}/login-links`);
    expect(res.status).toBe(201);
    expect(res.body.url).toMatch(new RegExp(`^${h.url}/signin#token=tbl_[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeGreaterThan(23.9 * 3_600_000);
    const token = tokenOf(res.body.url);
    secrets.push(token);
    return token;
  };
  const signInAs = async (memberId: string): Promise<Browser> => {
    const b = await signIn(h.url, await linkFor(memberId));
    secrets.push(b.cookie, b.csrfToken);
    return b;
  };

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'alice');
    member = await h.tokenFor('member', 'bob');
  });
  afterAll(async () => h?.close());

  it('trades a link for an HttpOnly, SameSite=Lax cookie session that works on /me and admin routes', async () => {
    const b = await signInAs(admin.memberId);
    expect(b.signIn.body).toMatchObject({ member: { id: admin.memberId, name: 'alice' }, role: 'admin', csrfToken: expect.any(String) });
    expect(Date.parse(b.signIn.body.expiresAt) - Date.now()).toBeGreaterThan(167 * 3_600_000);
    expect(b.cookie).toMatch(/^tbs_[A-Za-z0-9_-]{43}$/);
    const flags = b.setCookie.split(';').map((p) => p.trim().toLowerCase());
    expect(flags).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/']));
    expect(flags.find((f) => f.startsWith('max-age='))).toMatch(/^max-age=60(4799|4800)$/);
    // Plain http, no publicUrl: Secure would make the browser drop the cookie.
    expect(flags).not.toContain('secure');

    const me = await b.request('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ member: { id: admin.memberId, name: 'alice', workspaceId: h.webWorkspaceId }, org: { name: 'default' }, role: 'admin', via: 'session', csrfToken: b.csrfToken });
    expect((await b.request('GET', '/api/v1/workspaces')).status).toBe(200);
    const created = await b.request('POST', '/api/v1/tokens', { body: { name: 'from-browser', role: 'member' } });
    expect(created.status).toBe(201);
    secrets.push(created.body.token);
    // The change is attributed to the member, through this session.
    const events = [];
    for await (const e of h.audit.query({ type: 'admin-change' })) if (e.action === 'token.create' && e.name === 'from-browser') events.push(e);
    expect(events[0]).toMatchObject({ actor: admin.memberId, credential: expect.stringMatching(/^session:/) });
  });

  it('makes a new session on every sign-in, ignoring any cookie the browser already had (no fixation)', async () => {
    const first = await signInAs(member.memberId);
    const planted = 'tbs_' + 'A'.repeat(43);
    const res = await send(h.url, 'POST', '/api/v1/auth/link', { cookie: `tagbox_session=${planted}` }, { token: await linkFor(member.memberId) });
    expect(res.status).toBe(200);
    const second = /^tagbox_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
    expect(second).toBeDefined();
    expect(second).not.toBe(planted);
    expect(second).not.toBe(first.cookie);
    expect((await browserWith(h.url, planted, 'x').request('GET', '/api/v1/me')).status).toBe(401);
  });

  it('uses a link once: a second use, and one of two concurrent uses, are refused', async () => {
    const token = await linkFor(member.memberId);
    expect((await send(h.url, 'POST', '/api/v1/auth/link', {}, { token })).status).toBe(200);
    const again = await send(h.url, 'POST', '/api/v1/auth/link', {}, { token });
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: { code: 'link_invalid', message: LINK_INVALID } });
    expect(again.headers.get('set-cookie')).toBeNull();

    for (let round = 0; round < 3; round++) {
      const t = await linkFor(member.memberId);
      const results = await Promise.all([1, 2, 3].map(() => send(h.url, 'POST', '/api/v1/auth/link', {}, { token: t })));
      expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
    }
  });

  it('refuses unknown, malformed and expired links, and expired or idle sessions', async () => {
    for (const token of ['tbl_' + 'x'.repeat(43), 'tbx_nope', 'nope']) {
      const res = await send(h.url, 'POST', '/api/v1/auth/link', {}, { token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('link_invalid');
    }
    const bad = await send(h.url, 'POST', '/api/v1/auth/link', {}, { tokn: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^body/);

    const expiring = await linkFor(member.memberId);
    await h.store.db.updateTable('web_signin_links').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('used_at', 'is', null).execute();
    expect((await send(h.url, 'POST', '/api/v1/auth/link', {}, { token: expiring })).body.error.code).toBe('link_invalid');

    const absolute = await signInAs(member.memberId);
    const idle = await signInAs(member.memberId);
    expect((await absolute.request('GET', '/api/v1/me')).status).toBe(200);
    const past = new Date(Date.now() - 1000).toISOString();
    const hours25 = new Date(Date.now() - 25 * 3_600_000).toISOString();
    const ids = await h.store.db.selectFrom('web_sessions').select(['id', 'created_at']).where('member_id', '=', member.memberId).orderBy('created_at', 'desc').limit(2).execute();
    expect(ids).toHaveLength(2);
    // The newest is `idle`, the one before it `absolute`.
    await h.store.db.updateTable('web_sessions').set({ expires_at: past }).where('id', '=', ids[1]!.id).execute();
    await h.store.db.updateTable('web_sessions').set({ last_seen_at: hours25 }).where('id', '=', ids[0]!.id).execute();
    expect((await absolute.request('GET', '/api/v1/me')).status).toBe(401);
    expect((await idle.request('GET', '/api/v1/me')).status).toBe(401);
  });

  it('signs out: 204, the cookie cleared, the old cookie refused from then on', async () => {
    const b = await signInAs(member.memberId);
    expect((await b.request('POST', '/api/v1/auth/signout', { csrf: null })).status).toBe(403);
    const out = await b.request('POST', '/api/v1/auth/signout');
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^tagbox_session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i);
    expect((await b.request('GET', '/api/v1/me')).status).toBe(401);
    expect((await b.request('POST', '/api/v1/tokens', { body: { name: 'after-signout' } })).status).toBe(401);
  });

  it('applies a demotion to a live session at once', async () => {
    const carol = await h.tokenFor('admin', 'carol');
    const b = await signInAs(carol.memberId);
    expect((await b.request('GET', '/api/v1/workspaces')).status).toBe(200);
    expect((await h.api(h.ownerToken, 'PUT', `/api/v1/members/${carol.memberId}/roles`, { roles: [] })).status).toBe(200);
    const after = await b.request('GET', '/api/v1/workspaces');
    expect(after.status).toBe(403);
    expect((await b.request('GET', '/api/v1/me')).body.role).toBe('member');
  });

  it('refuses a state change made with the cookie without the CSRF token, with a wrong one, or from another origin', async () => {
    const b = await signInAs(admin.memberId);
    const body = { name: 'csrf-probe', role: 'member' };
    for (const csrf of [null, '', 'x', b.csrfToken.slice(0, -1) + (b.csrfToken.endsWith('A') ? 'B' : 'A'), b.csrfToken + 'x']) {
      const res = await b.request('POST', '/api/v1/tokens', { body, csrf });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: { code: 'csrf', message: CSRF } });
    }
    // Another session's token is no good either.
    const other = await signInAs(admin.memberId);
    expect((await b.request('POST', '/api/v1/tokens', { body, csrf: other.csrfToken })).status).toBe(403);
    // Every method but GET/HEAD/OPTIONS, on routes of every kind, including unknown ones.
    expect((await b.request('DELETE', '/api/v1/tokens/whatever', { csrf: null })).status).toBe(403);
    expect((await b.request('PUT', '/api/v1/bundles/x', { body: {}, csrf: null })).status).toBe(403);
    expect((await b.request('PATCH', '/api/v1/org', { body: {}, csrf: null })).status).toBe(403);
    expect((await b.request('POST', '/api/v1/not-a-route', { body: {}, csrf: null })).status).toBe(403);
    // A public POST made with a live cookie too.
    expect((await b.request('POST', '/api/v1/auth/link', { body: { token: 'tbl_x' }, csrf: null })).status).toBe(403);
    const foreign = await b.request('POST', '/api/v1/tokens', { body, headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.code).toBe('csrf');
    // Signing in from another site's page (login CSRF) is refused too.
    const login = await send(h.url, 'POST', '/api/v1/auth/link', { origin: 'https://evil.example' }, { token: await linkFor(member.memberId) });
    expect(login.status).toBe(403);
    // Nothing was created by the refused requests.
    const names = (await b.request('GET', '/api/v1/tokens')).body.map((t: { name: string }) => t.name);
    expect(names).not.toContain('csrf-probe');
    const same = await b.request('POST', '/api/v1/tokens', { body, headers: { origin: h.url } });
    expect(same.status).toBe(201);
    secrets.push(same.body.token);
  });

  it('leaves bearer requests alone: no CSRF token needed, and a bearer header wins over a cookie', async () => {
    const b = await signInAs(member.memberId);
    const bearer = await h.api(admin.token, 'POST', '/api/v1/tokens', { name: 'bearer-no-csrf', role: 'member' });
    expect(bearer.status).toBe(201);
    secrets.push(bearer.body.token);
    const both = await send(h.url, 'GET', '/api/v1/me', { authorization: `Bearer ${admin.token}`, cookie: `tagbox_session=${b.cookie}` });
    expect(both.body).toMatchObject({ member: { id: admin.memberId }, via: 'token' });
    expect(both.body.csrfToken).toBeUndefined();
    // A bad bearer token never falls back on the cookie.
    const bad = await send(h.url, 'GET', '/api/v1/me', { authorization: 'Bearer tbx_nope', cookie: `tagbox_session=${b.cookie}` });
    expect(bad.status).toBe(401);
    const me = await h.api(member.token, 'GET', '/api/v1/me');
    expect(me.body).toMatchObject({ member: { id: member.memberId, name: 'bob', workspaceId: h.webWorkspaceId }, role: 'member', via: 'token' });
    expect(me.body.expiresAt).toBeUndefined();
  });

  it('lets nobody mint a link for someone who outranks them, or in another org; members not at all', async () => {
    const byAdmin = await h.api(admin.token, 'POST', `/api/v1/members/${h.ownerMemberId}/login-links`);
    expect(byAdmin.status).toBe(403);
    expect(byAdmin.text).not.toContain('tbl_');
    // Nor through a cookie session of an admin.
    const b = await signInAs(admin.memberId);
    expect((await b.request('POST', `/api/v1/members/${h.ownerMemberId}/login-links`)).status).toBe(403);
    expect((await h.api(member.token, 'POST', `/api/v1/members/${member.memberId}/login-links`)).status).toBe(403);
    expect((await h.api(member.token, 'POST', '/api/v1/invitations', { name: 'Eve' })).status).toBe(403);
    // An admin may for a member and for another admin.
    await linkFor(member.memberId, admin.token);
    await linkFor(admin.memberId, admin.token);
    // An admin cannot invite an owner, nor a member an admin.
    const owner = await h.api(admin.token, 'POST', '/api/v1/invitations', { name: 'Mallory', role: 'owner' });
    expect(owner.status).toBe(400);
    expect(owner.body.error.message).toMatch(/^body\.role:/);

    const other = await h.store.db.transaction().execute(async (db) => {
      const org = await createOrg(db, 'other');
      const ws = await createWorkspace(db, { orgId: org.id, kind: 'web', externalId: 'web', name: 'Web' });
      return createMemberIn(db, { workspaceId: ws.id, externalId: 'x', displayName: 'X', hasAccount: true });
    });
    const cross = await h.api(h.ownerToken, 'POST', `/api/v1/members/${other.id}/login-links`);
    expect(cross.status).toBe(404);
    expect((await h.api(h.ownerToken, 'POST', '/api/v1/members/no-such-member/login-links')).status).toBe(404);
  });

  it('invites a person: a web-workspace member with that role and a link that signs them in', async () => {
    const res = await h.api(admin.token, 'POST', '/api/v1/invitations', { name: 'Ada', email: 'Ada@Example.org', role: 'admin' });
    expect(res.status).toBe(201);
    expect(res.body.member).toMatchObject({ workspaceId: h.webWorkspaceId, displayName: 'Ada', hasAccount: true, roles: ['admin'] });
    expect(res.body.link.url).toMatch(new RegExp(`^${h.url}/signin#token=tbl_`));
    const listed = await h.api(admin.token, 'GET', `/api/v1/workspaces/${h.webWorkspaceId}/members`);
    expect(listed.body.find((m: { id: string }) => m.id === res.body.member.id)).toEqual(res.body.member);
    const email = await h.store.db.selectFrom('member_emails').select('email').where('member_id', '=', res.body.member.id).executeTakeFirst();
    expect(email?.email).toBe('ada@example.org');
    const ada = await signIn(h.url, tokenOf(res.body.link.url));
    secrets.push(ada.cookie, tokenOf(res.body.link.url));
    expect(ada.signIn.body).toMatchObject({ member: { id: res.body.member.id, name: 'Ada' }, role: 'admin' });

    const twice = await h.api(admin.token, 'POST', '/api/v1/invitations', { name: 'Ada again', email: 'ada@example.org' });
    expect(twice.status).toBe(409);
    const badEmail = await h.api(admin.token, 'POST', '/api/v1/invitations', { name: 'Bo', email: 'not-an-email' });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error.message).toMatch(/^body\.email: expected an email address/);
    const plain = await h.api(admin.token, 'POST', '/api/v1/invitations', { name: 'Cy' });
    expect(plain.status).toBe(201);
    expect(plain.body.member.roles).toEqual([]);
    secrets.push(tokenOf(plain.body.link.url));
  });

  it('says how one may sign in', async () => {
    const res = await h.api(undefined, 'GET', '/api/v1/auth/options');
    expect(res.body).toEqual({ link: true, oidc: null });
  });

  it('audits minting, sign-in and sign-out, and never records or logs a link, cookie or CSRF token', async () => {
    const b = await signInAs(member.memberId);
    await b.request('POST', '/api/v1/auth/signout');
    const actions: string[] = [];
    let dump = '';
    for await (const e of h.audit.query({})) {
      dump += JSON.stringify(e);
      if (typeof e.action === 'string') actions.push(`${e.type}:${e.action}`);
    }
    expect(actions).toEqual(expect.arrayContaining(['admin-change:login-link.create', 'signin:signin', 'signin:signout']));
    const logs = h.logs();
    expect(secrets.length).toBeGreaterThan(20);
    for (const s of secrets) {
      expect(dump).not.toContain(s);
      expect(logs).not.toContain(s);
    }
  });
});

describe.each(BACKENDS)('web sign-in behind an https publicUrl (%s)', (backend) => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApi(backend, { web: { publicUrl: 'https://tagbox.example.com', sessionHours: 2, sessionIdleHours: 1, signInLinkHours: 1 } });
  });
  afterAll(async () => h?.close());

  it('makes links on publicUrl, sets Secure cookies, and judges Origin against publicUrl', async () => {
    const link = await h.api(h.ownerToken, 'POST', `/api/v1/members/${h.ownerMemberId}/login-links`);
    expect(link.body.url).toMatch(/^https:\/\/tagbox\.example\.com\/signin#token=tbl_/);
    expect(Date.parse(link.body.expiresAt) - Date.now()).toBeLessThanOrEqual(3_600_000);
    // A forged Host changes nothing when publicUrl is set.
    const forged = await send(h.url, 'POST', `/api/v1/members/${h.ownerMemberId}/login-links`, { authorization: `Bearer ${h.ownerToken}`, host: 'evil.example' });
    expect(forged.body.url).toMatch(/^https:\/\/tagbox\.example\.com\//);
    const b = await signIn(h.url, tokenOf(link.body.url));
    const flags = b.setCookie.split(';').map((p) => p.trim().toLowerCase());
    expect(flags).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/', 'secure']));
    expect(flags.find((f) => f.startsWith('max-age='))).toMatch(/^max-age=7(199|200)$/);
    expect(b.signIn.body.role).toBe('owner');
    expect((await b.request('PATCH', '/api/v1/org', { body: { dmsAllowed: true }, headers: { origin: h.url } })).status).toBe(403);
    expect((await b.request('PATCH', '/api/v1/org', { body: { dmsAllowed: true }, headers: { origin: 'https://tagbox.example.com' } })).status).toBe(200);
  });
});
