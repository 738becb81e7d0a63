import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { signIn, tokenOf } from '../server/web-client.js';
import { startUp, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/** A fresh `tagbox up` prints the Owner's one-time sign-in link first, and that link signs a browser in. */
describe.each(BACKENDS)('the first-run sign-in link of tagbox up (%s)', { timeout: E2E_TIMEOUT }, (name) => {
  let backend: TestBackend;
  let up: Up | undefined;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    up = await startUp(backend.env);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it('prints the link before the API token, and it signs in as the Owner once; the cookie talks to the agent', async () => {
    const out = up!.stdout();
    const block = out.slice(out.indexOf('First run:'));
    expect(block).toMatch(/^First run: .*\nOpen this one-time link to sign in as the Owner \(valid 24 h; later: npx tagbox login-link --member \S+\):\n\n {4}http:\/\/127\.0\.0\.1:\d+\/signin#token=tbl_\S+\n/);
    expect(up!.signInUrl).toBe(`${up!.url}/signin#token=${tokenOf(up!.signInUrl!)}`);
    expect(block.indexOf('signin#token=')).toBeLessThan(block.indexOf('tbx_'));
    expect(up!.token).toMatch(/^tbx_/);

    const browser = await signIn(up!.url, tokenOf(up!.signInUrl!));
    expect(browser.signIn.body).toMatchObject({ member: { name: 'Owner' }, role: 'owner' });
    await expect(signIn(up!.url, tokenOf(up!.signInUrl!))).rejects.toThrow(/401/);
    const me = await browser.request('GET', '/api/v1/me');
    expect(me.body).toMatchObject({ role: 'owner', via: 'session' });
    const { generalId } = await webWorkspace(up!, up!.token!);
    const posted = await browser.request('POST', `/api/v1/channels/${generalId}/messages`, { body: { text: 'echo from-the-browser' } });
    expect(posted.status).toBe(202);
    expect((await browser.request('POST', `/api/v1/channels/${generalId}/messages`, { body: { text: 'echo x' }, csrf: null })).status).toBe(403);
    // The link is neither logged nor in the audit log.
    expect(up!.stderr()).not.toContain(tokenOf(up!.signInUrl!));
  });

  it('prints no link on a restart', async () => {
    await up!.stop();
    up = await startUp(backend.env);
    expect(up.signInUrl).toBeUndefined();
    expect(up.stdout()).not.toContain('signin#token=');
  });
});
