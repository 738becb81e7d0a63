import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_TIMEOUT } from '../e2e/up-harness.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { launchBrowser, openPage, PHONE, screenshot, type TestPage } from './browser.js';
import { signInAs, startWebUp, type WebUp } from './web-up.js';

/**
 * The app's frame in a real browser against a real `tagbox up`: signed out it
 * asks to sign in; a one-time link signs in (once) into an HttpOnly cookie
 * session; signing out ends that session on the server, not just in the page.
 */
describe('web app: signing in and out (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let web: WebUp;
  let browser: Browser;
  const pages: TestPage[] = [];
  const open = async (viewport?: { width: number; height: number }) => {
    const tp = await openPage(browser, web.up.url, viewport ? { viewport } : {});
    pages.push(tp);
    return tp;
  };

  beforeAll(async () => {
    backend = await createTestBackend('sqlite');
    web = await startWebUp(backend.env);
    browser = await launchBrowser();
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
    await web?.up.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it('signed out, every app path asks to sign in, under the strict CSP', async () => {
    const tp = await open();
    const response = await tp.page.goto('/admin/bundles');
    expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
    await tp.page.getByRole('heading', { name: 'Sign in to Tagbox' }).waitFor();
    await screenshot(tp.page, 'signin-signed-out');
    expect(tp.problems.filter((p) => !p.includes('401'))).toEqual([]);
  });

  it('a bogus or used link says why, and signs nobody in', async () => {
    const tp = await open();
    await tp.page.goto('/signin#token=tbl_not-a-real-token');
    await tp.page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    expect(tp.page.url()).not.toContain('tbl_');
    expect(await tp.context.cookies()).toEqual([]);
    await screenshot(tp.page, 'signin-bad-link');
  });

  it('a one-time link signs the Owner in, into an HttpOnly cookie the page cannot read; it works once', async () => {
    const tp = await open();
    const link = await web.up.api(web.owner, 'POST', `/members/${web.ownerId}/login-links`, {});
    expect(link.status, link.text).toBe(201);
    expect(link.body.url).toMatch(/\/signin#token=/);
    await tp.page.goto(link.body.url);
    await tp.page.locator('.topbar').getByText('Owner').waitFor();
    // The token left the address bar at once; the session is a cookie scripts cannot see.
    expect(tp.page.url()).not.toContain('token=');
    const cookies = await tp.context.cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: 'tagbox_session', httpOnly: true, sameSite: 'Lax' })]);
    expect(await tp.page.evaluate<string>('document.cookie')).toBe('');
    await tp.page.getByRole('link', { name: 'Admin' }).waitFor();
    await screenshot(tp.page, 'shell-signed-in-owner');
    // A reload keeps the session.
    await tp.page.reload();
    await tp.page.locator('.topbar').getByText('Owner').waitFor();

    expect(tp.problems).toEqual([]);
    // Signed in, opening another member's link signs in as them (a new session, not the old one). The page
    // first tries without the old session's CSRF token (a 403 the browser logs), then with it.
    const ada = await web.up.api(web.owner, 'POST', '/invitations', { name: 'Ada Lovelace' });
    expect(ada.status, ada.text).toBe(201);
    await tp.page.goto(ada.body.link.url);
    await tp.page.locator('.topbar').getByText('Ada Lovelace').waitFor();
    expect(await tp.page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    expect((await tp.context.cookies())[0]!.value).not.toBe(cookies[0]!.value);

    // The same link in another browser: refused.
    const again = await open();
    await again.page.goto(link.body.url);
    await again.page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
    expect(await again.context.cookies()).toEqual([]);
  });

  it('signing out ends the session on the server: the old cookie is refused afterwards', async () => {
    const tp = await open();
    await signInAs(tp, web, web.ownerId);
    const [cookie] = await tp.context.cookies();
    await tp.page.getByRole('button', { name: 'Sign out' }).click();
    await tp.page.getByRole('heading', { name: 'Sign in to Tagbox' }).waitFor();
    await screenshot(tp.page, 'signed-out');
    // Someone who copied the cookie before sign-out gets nothing with it.
    const copy = await open();
    await copy.context.addCookies([cookie!]);
    const me = await copy.page.request.get('/api/v1/me');
    expect(me.status()).toBe(401);
    await copy.page.goto('/chat');
    await copy.page.getByRole('heading', { name: 'Sign in to Tagbox' }).waitFor();
  });

  it('fits a phone, and works with the keyboard alone', async () => {
    const tp = await open(PHONE);
    await signInAs(tp, web, web.ownerId);
    const overflow = await tp.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(tp.page, 'shell-phone');
    // Tab from the top: the skip link first, then the app's own links and buttons.
    await tp.page.keyboard.press('Tab');
    expect(await tp.page.evaluate<string | undefined>('document.activeElement?.textContent')).toBe('Skip to content');
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      await tp.page.keyboard.press('Tab');
      names.push(await tp.page.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''"));
    }
    expect(names).toEqual(expect.arrayContaining(['Chat', 'Admin', 'Sign out']));
  });
});
