import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { startIdp, TestBrowser, type TestIdp } from '../fixtures/oidc-idp.js';
import { startApi, type ApiHarness } from './harness.js';
import { send } from './web-client.js';
import { isLocalPath } from '../../src/server/web-auth/oidc-routes.js';

/** OIDC sign-in against a real OpenID Provider (oidc-provider) over TLS, trusted through web.oidc.caFile. */
describe.each(BACKENDS)('web sign-in with OIDC (%s)', (backend) => {
  let ca: TestCa;
  let idp: TestIdp;
  let h: ApiHarness;
  let callback: string;

  const errorOf = (location: string | undefined) => {
    const m = /\/signin#error=(.*)$/.exec(location ?? '');
    return m ? decodeURIComponent(m[1]!) : undefined;
  };
  /** The whole flow for `login`, up to and including Tagbox's callback. */
  const signInAs = async (login: string, next = '/channels') => {
    const browser = new TestBrowser(ca.certPem);
    const url = await browser.untilCallback(`${h.url}/auth/oidc/start?next=${encodeURIComponent(next)}`, login, callback);
    const oidcCookie = browser.cookie(h.url, 'tagbox_oidc');
    const res = await browser.request(url);
    return { browser, url, res, oidcCookie, session: browser.cookie(h.url, 'tagbox_session') };
  };

  beforeAll(async () => {
    ca = await createTestCa();
    idp = await startIdp(ca);
    h = await startApi(backend, {
      web: {
        sessionHours: 168,
        sessionIdleHours: 24,
        signInLinkHours: 24,
        oidc: { issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, name: 'Acme SSO', scopes: ['openid', 'email', 'profile'], allowedEmailDomains: ['auto.example'], caFile: ca.certFile },
      },
    });
    callback = `${h.url}/auth/oidc/callback`;
  });
  afterAll(async () => {
    await h?.close();
    await idp?.close();
  });

  it('offers the provider on the sign-in page', async () => {
    expect((await h.api(undefined, 'GET', '/api/v1/auth/options')).body).toEqual({ link: true, oidc: { name: 'Acme SSO', start: '/auth/oidc/start' } });
  });

  it('starts with code + PKCE S256, state and nonce, the state kept behind an HttpOnly cookie', async () => {
    const browser = new TestBrowser(ca.certPem);
    const res = await browser.request(`${h.url}/auth/oidc/start?next=/x`);
    expect(res.status).toBe(302);
    const to = new URL(res.location!);
    expect(to.origin).toBe(idp.issuer);
    expect(Object.fromEntries(to.searchParams)).toMatchObject({ response_type: 'code', client_id: 'tagbox', code_challenge_method: 'S256', redirect_uri: callback, scope: 'openid email profile' });
    for (const p of ['state', 'nonce', 'code_challenge']) expect(to.searchParams.get(p)!.length).toBeGreaterThanOrEqual(43);
    const flags = res.setCookies.find((c) => c.startsWith('tagbox_oidc='))!.split(';').map((s) => s.trim().toLowerCase());
    expect(flags).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/auth/oidc', 'max-age=600']));
    // The state is not the cookie: the row is found by the cookie's hash.
    expect(browser.cookie(h.url, 'tagbox_oidc')).not.toContain(to.searchParams.get('state'));
  });

  it('signs in an invited member by verified email, links the identity, and goes to next', async () => {
    const invited = await h.api(h.ownerToken, 'POST', '/api/v1/invitations', { name: 'Ada', email: 'Ada@Example.org' });
    expect(invited.status).toBe(201);
    const first = await signInAs('ada@example.org', '/channels/general?tab=1');
    expect(first.res.status).toBe(302);
    expect(first.res.location).toBe(`${h.url}/channels/general?tab=1`);
    expect(first.session).toMatch(/^tbs_/);
    const flags = first.res.setCookies.find((c) => c.startsWith('tagbox_session='))!.split(';').map((s) => s.trim().toLowerCase());
    expect(flags).toEqual(expect.arrayContaining(['httponly', 'samesite=lax', 'path=/']));
    const me = await send(h.url, 'GET', '/api/v1/me', { cookie: `tagbox_session=${first.session}` });
    expect(me.body).toMatchObject({ member: { id: invited.body.member.id, name: 'Ada' }, role: 'member', via: 'session' });
    const identity = await h.store.db.selectFrom('oidc_identities').selectAll().where('member_id', '=', invited.body.member.id).executeTakeFirst();
    expect(identity).toMatchObject({ issuer: idp.issuer, subject: 'ada@example.org' });
    // The next sign-in finds the stored identity link.
    const again = await signInAs('ada@example.org');
    expect(again.res.location).toBe(`${h.url}/channels`);
    const events = [];
    for await (const e of h.audit.query({ type: 'signin' })) if (e.method === 'oidc' && e.actor === invited.body.member.id) events.push(e.mapped);
    expect(events).toEqual(['invited', 'identity']);
    // The authorization code never reached the log.
    const code = new URL(first.url).searchParams.get('code')!;
    expect(code.length).toBeGreaterThan(10);
    expect(h.logs()).not.toContain(code);
    expect(h.logs()).not.toContain(idp.clientSecret);
  });

  it('refuses an unknown email, naming it; an unverified one; and creates members of an allowed domain', async () => {
    const unknown = await signInAs('eve@nowhere.org');
    expect(unknown.res.status).toBe(302);
    expect(errorOf(unknown.res.location)).toBe('no Tagbox member for eve@nowhere.org; ask an admin to invite you');
    expect(unknown.session).toBeUndefined();

    await h.api(h.ownerToken, 'POST', '/api/v1/invitations', { name: 'Uma', email: 'uma@example.org' });
    const unverified = await signInAs('unverified-uma@example.org');
    expect(errorOf(unverified.res.location)).toMatch(/^the email uma@example\.org is not verified/);
    expect(unverified.session).toBeUndefined();

    const auto = await signInAs('zed@auto.example');
    expect(auto.res.location).toBe(`${h.url}/channels`);
    const me = await send(h.url, 'GET', '/api/v1/me', { cookie: `tagbox_session=${auto.session}` });
    expect(me.body).toMatchObject({ role: 'member', member: { name: 'Name of zed@auto.example', workspaceId: h.webWorkspaceId } });
    const refused = [];
    for await (const e of h.audit.query({ type: 'signin' })) if (e.outcome === 'refused') refused.push(e.reason);
    expect(refused).toContain('no Tagbox member for eve@nowhere.org; ask an admin to invite you');
  });

  it('refuses a callback whose state was tampered with', async () => {
    await h.api(h.ownerToken, 'POST', '/api/v1/invitations', { name: 'Tom', email: 'tom@example.org' });
    const browser = new TestBrowser(ca.certPem);
    const url = new URL(await browser.untilCallback(`${h.url}/auth/oidc/start`, 'tom@example.org', callback));
    const state = url.searchParams.get('state')!;
    const loginCookie = browser.cookie(h.url, 'tagbox_oidc')!;
    url.searchParams.set('state', state.slice(0, -2) + (state.endsWith('AA') ? 'BB' : 'AA'));
    const res = await browser.request(url.href);
    expect(res.status).toBe(302);
    expect(errorOf(res.location)).toMatch(/^sign-in with Acme SSO failed: .*state/);
    expect(browser.cookie(h.url, 'tagbox_session')).toBeUndefined();
    // And the login it belonged to is spent: the genuine callback is refused now too.
    url.searchParams.set('state', state);
    browser.setCookie(h.url, 'tagbox_oidc', loginCookie);
    const genuine = await browser.request(url.href);
    expect(errorOf(genuine.location)).toMatch(/already used, expired, or started in another browser/);
    expect(browser.cookie(h.url, 'tagbox_session')).toBeUndefined();
  });

  it('refuses a replayed callback, with or without the login cookie', async () => {
    await h.api(h.ownerToken, 'POST', '/api/v1/invitations', { name: 'Rex', email: 'rex@example.org' });
    const done = await signInAs('rex@example.org');
    expect(done.session).toMatch(/^tbs_/);
    // The browser's own cookie was cleared; an attacker who kept it fares no better.
    expect(done.browser.cookie(h.url, 'tagbox_oidc')).toBeUndefined();
    const replay = new TestBrowser(ca.certPem);
    replay.setCookie(h.url, 'tagbox_oidc', done.oidcCookie!);
    const res = await replay.request(done.url);
    expect(res.status).toBe(302);
    expect(errorOf(res.location)).toMatch(/already used, expired, or started in another browser/);
    expect(replay.cookie(h.url, 'tagbox_session')).toBeUndefined();
    // A callback in a browser that never started a login (login CSRF by a planted code) is refused too.
    expect(errorOf((await new TestBrowser(ca.certPem).request(done.url)).location)).toBeDefined();
  });

  it('refuses to send anyone elsewhere after sign-in (no open redirect)', async () => {
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example', 'evil', '/\r\nSet-Cookie:x', '/\t/evil.example', 'javascript:alert(1)']) {
      const res = await send(h.url, 'GET', `/auth/oidc/start?next=${encodeURIComponent(next)}`, {});
      expect(res.status, next).toBe(400);
      expect(res.body.error.message).toMatch(/^query\.next: expected a path on this site/);
    }
    expect(isLocalPath('/channels/x?y=1#z')).toBe(true);
    expect(isLocalPath('/\\x')).toBe(false);
    expect(isLocalPath('//x')).toBe(false);
  });
});

describe('OIDC with a provider that is down', () => {
  it('starts anyway; /auth/oidc/start answers 503 saying why', async () => {
    const h = await startApi('sqlite', { web: { sessionHours: 168, sessionIdleHours: 24, signInLinkHours: 24, oidc: { issuer: 'https://127.0.0.1:1', clientId: 'x', name: 'Down SSO', scopes: ['openid'], allowedEmailDomains: [] } } });
    try {
      expect((await h.api(h.ownerToken, 'GET', '/api/v1/me')).status).toBe(200);
      const res = await send(h.url, 'GET', '/auth/oidc/start', {});
      expect(res.status).toBe(503);
      expect(res.body.error).toMatchObject({ code: 'oidc_unavailable' });
      expect(res.body.error.message).toMatch(/^sign-in with Down SSO is unavailable: discovery of https:\/\/127\.0\.0\.1:1 failed/);
      expect(h.logs()).toContain('OIDC: discovery failed');
    } finally {
      await h.close();
    }
  });
});
