import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_TIMEOUT } from '../e2e/up-harness.js';
import { createTestCa } from '../fixtures/ca.js';
import { startIdp, type TestIdp } from '../fixtures/oidc-idp.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { launchBrowser, openPage, screenshot, type TestPage } from './browser.js';
import { startWebUp, type WebUp } from './web-up.js';

/**
 * Single sign-on in a real browser: `tagbox up` configured with a real OpenID
 * Provider (oidc-provider over TLS, its CA given to Tagbox as web.oidc.caFile);
 * the person clicks "Sign in with Acme SSO", logs in at the provider and lands
 * in Tagbox as the member they were invited as. An email nobody invited is
 * refused, with the reason on the sign-in page.
 */
describe('web app: sign-in with OIDC (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let idp: TestIdp;
  let web: WebUp;
  let browser: Browser;
  let caDir: string;
  const pages: TestPage[] = [];

  beforeAll(async () => {
    const ca = await createTestCa();
    idp = await startIdp(ca);
    // Readable by the server's own user under privilege separation.
    caDir = mkdtempSync(join(tmpdir(), 'tagbox-oidc-ca-'));
    chmodSync(caDir, 0o755);
    const caFile = join(caDir, 'idp-ca.pem');
    writeFileSync(caFile, ca.certPem, { mode: 0o644 });
    backend = await createTestBackend('sqlite');
    const yaml = [
      'web:',
      '  oidc:',
      `    issuer: ${idp.issuer}`,
      `    clientId: ${idp.clientId}`,
      '    name: Acme SSO',
      `    caFile: ${caFile}`,
    ].join('\n');
    writeFileSync(join(backend.home, 'tagbox.yaml'), `${yaml}\n`);
    web = await startWebUp({ ...backend.env, TAGBOX_WEB_OIDC_CLIENT_SECRET: idp.clientSecret });
    browser = await launchBrowser();
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
    await web?.up.stop();
    await idp?.close();
    await backend?.cleanup();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  }, E2E_TIMEOUT);

  // The provider's certificate is the test CA's, which Chromium does not know (Tagbox itself verifies it: caFile).
  const open = async () => {
    const tp = await openPage(browser, web.up.url, { ignoreHTTPSErrors: true });
    pages.push(tp);
    return tp;
  };

  /** At the provider: its development login (any password) and consent forms. */
  async function loginAtProvider(page: TestPage['page'], login: string) {
    await page.waitForURL((url) => url.origin === idp.issuer);
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').first().click();
    // Consent (the first time for this client), then back to Tagbox.
    await page.waitForURL((url) => url.origin !== idp.issuer || url.pathname.includes('/interaction/'));
    if (new URL(page.url()).origin === idp.issuer) await page.locator('button[type="submit"]').first().click();
  }

  it('an invited person signs in through the provider and lands in the chat as their member', async () => {
    const invited = await web.up.api(web.owner, 'POST', '/invitations', { name: 'Grace Hopper', email: 'grace@acme.example' });
    expect(invited.status, invited.text).toBe(201);
    const { page, problems } = await open();
    await page.goto('/chat');
    const sso = page.getByRole('link', { name: 'Sign in with Acme SSO' });
    await sso.waitFor();
    await screenshot(page, 'oidc-signin-page');
    await sso.click();
    await loginAtProvider(page, 'grace@acme.example');
    await page.locator('.topbar').getByText('Grace Hopper').waitFor();
    expect(new URL(page.url()).pathname).toMatch(/^\/chat/);
    const cookies = await page.context().cookies(web.up.url);
    expect(cookies.find((c) => c.name === 'tagbox_session')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    const me = await page.request.get('/api/v1/me');
    expect((await me.json()).member.id).toBe(invited.body.member.id);
    await screenshot(page, 'oidc-signed-in');
    // The provider's pages load things from elsewhere (which fail here), and signed out /me is a 401: script errors count.
    expect(problems.filter((p) => p.startsWith('pageerror'))).toEqual([]);
  });

  it('an email nobody invited is refused, and the sign-in page says so', async () => {
    const { page } = await open();
    await page.goto('/signin');
    await page.getByRole('link', { name: 'Sign in with Acme SSO' }).click();
    await loginAtProvider(page, 'mallory@elsewhere.example');
    const reason = page.getByRole('alert');
    await reason.waitFor();
    expect(await reason.textContent()).toContain('mallory@elsewhere.example');
    expect(page.url()).not.toContain('#error');
    expect((await page.context().cookies(web.up.url)).some((c) => c.name === 'tagbox_session')).toBe(false);
    await screenshot(page, 'oidc-refused');
  });
});
