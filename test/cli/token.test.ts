import { userInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { startApi, type ApiHarness } from '../server/harness.js';

/** `tagbox token create --member ID [--name N]` (CONTRACT.md), run against a live server's database. */
describe.each(BACKENDS)('tagbox token create (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  const token = (...args: string[]) => runTagbox(['token', ...args], { env: h.backend.env });

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'alice');
  });
  afterAll(async () => h?.close());

  it('prints a new member-role token for the member, once, audited as the operator', async () => {
    const r = await token('create', '--member', admin.memberId, '--name', 'script');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^tbx_[A-Za-z0-9_-]{43}\n$/);
    const minted = r.stdout.trim();
    // It acts as that member, with the member role only (the member is an admin).
    expect((await h.api(minted, 'GET', '/api/v1/tokens')).body.map((t: { name: string }) => t.name)).toEqual(['alice', 'script']);
    expect((await h.api(minted, 'GET', '/api/v1/bundles')).status).toBe(403);
    // The owner's member gets a member-role token too: the operator path never hands out owner power.
    const forOwner = (await token('create', '--member', h.ownerMemberId, '--name', 'owner-script')).stdout.trim();
    expect((await h.api(forOwner, 'GET', '/api/v1/org')).status).toBe(403);
    expect((await h.api(forOwner, 'GET', '/api/v1/me/connectors')).status).toBe(200);

    const events = (await h.api(h.ownerToken, 'GET', '/api/v1/audit?type=admin-change&limit=10000')).body.events.filter((e: { action: string; name: string }) => e.action === 'token.create' && e.name === 'script');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: `operator:${userInfo().username}`, member: admin.memberId, role: 'member' });
    expect(events[0].actor).not.toBe(admin.memberId);
    // The token is never stored or logged: only its hash.
    expect(JSON.stringify(await h.store.db.selectFrom('api_tokens').selectAll().execute())).not.toContain(minted);
    expect(JSON.stringify(events)).not.toContain(minted);
  });

  it('exits 2 naming the flag for an unknown member, a missing --member or a name already taken', async () => {
    const unknown = await token('create', '--member', 'no-such-member');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--member "no-such-member"');
    expect(unknown.stdout).toBe('');
    const missing = await token('create');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--member');
    const twice = await token('create', '--member', admin.memberId, '--name', 'alice');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('--name "alice"');
    // Nothing was minted by the failed runs, and the server keeps serving.
    expect((await h.api(admin.token, 'GET', '/api/v1/tokens')).body.filter((t: { memberId: string }) => t.memberId === admin.memberId).map((t: { name: string }) => t.name).sort()).toEqual(['alice', 'script']);
    const help = await runTagbox(['--help']);
    expect(help.stdout).toMatch(/^ {2}token\b/m);
  });
});
