import { userInfo } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { startApi, type ApiHarness } from '../server/harness.js';
import { send, signIn, tokenOf } from '../server/web-client.js';

/** `tagbox login-link --member ID [--url BASE]`, run against a live server's database. */
describe.each(BACKENDS)('tagbox login-link (%s)', (backend) => {
  let h: ApiHarness;
  const loginLink = (...args: string[]) => runTagbox(['login-link', ...args], { env: h.backend.env });

  beforeAll(async () => {
    h = await startApi(backend);
  });
  afterAll(async () => h?.close());

  it('prints a one-time link once, that signs in as the member, audited as the operator', async () => {
    const r = await loginLink('--member', h.ownerMemberId, '--url', h.url);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${h.url}/signin#token=tbl_[A-Za-z0-9_-]{43}\\n$`));
    expect(r.stderr).toMatch(/^valid until \d{4}-\d\d-\d\dT.*for one use\n$/);
    const url = r.stdout.trim();
    const b = await signIn(h.url, tokenOf(url));
    expect(b.signIn.body).toMatchObject({ member: { id: h.ownerMemberId, name: 'Owner' }, role: 'owner' });
    expect((await send(h.url, 'POST', '/api/v1/auth/link', {}, { token: tokenOf(url) })).status).toBe(401);

    const events = (await h.api(h.ownerToken, 'GET', '/api/v1/audit?type=admin-change&limit=10000')).body.events.filter((e: { action: string }) => e.action === 'login-link.create');
    expect(events.at(-1)).toMatchObject({ actor: `operator:${userInfo().username}`, target: `member:${h.ownerMemberId}` });
    expect(JSON.stringify(events)).not.toContain(tokenOf(url));
    expect(JSON.stringify(await h.store.db.selectFrom('web_signin_links').selectAll().execute())).not.toContain(tokenOf(url));
  });

  it('takes the base URL from web.publicUrl, else the configured server address', async () => {
    const plain = await loginLink('--member', h.ownerMemberId);
    expect(plain.stdout).toMatch(/^http:\/\/127\.0\.0\.1:8787\/signin#token=tbl_/);
    writeFileSync(join(h.backend.home, 'tagbox.yaml'), 'web:\n  publicUrl: https://tagbox.example.com\n');
    const configured = await loginLink('--member', h.ownerMemberId);
    expect(configured.code).toBe(0);
    expect(configured.stdout).toMatch(/^https:\/\/tagbox\.example\.com\/signin#token=tbl_/);
    writeFileSync(join(h.backend.home, 'tagbox.yaml'), 'web:\n  publicUrl: https://tagbox.example.com/app\n');
    const invalid = await loginLink('--member', h.ownerMemberId);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('web.publicUrl');
    writeFileSync(join(h.backend.home, 'tagbox.yaml'), '');
  });

  it('exits 2 naming the flag for an unknown member, a missing --member or a bad --url', async () => {
    const unknown = await loginLink('--member', 'no-such-member');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--member "no-such-member"');
    expect(unknown.stdout).toBe('');
    const missing = await loginLink();
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--member');
    for (const bad of ['ftp://x', 'http://x/path', 'not a url']) {
      const r = await loginLink('--member', h.ownerMemberId, '--url', bad);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--url');
      expect(r.stdout).toBe('');
    }
    const help = await runTagbox(['--help']);
    expect(help.stdout).toMatch(/^ {2}login-link\b/m);
  });
});
