import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * Attack: an admin acts as someone else. Before the fix an admin minted a token
 * in another member's name (the owner's too) with POST /tokens {memberId},
 * then used it to revoke the owner's tokens or re-point that member's personal
 * connector, and the audit named the victim as the actor.
 */
describe.each(BACKENDS)('no impersonation over the API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let bob: { token: string; memberId: string };
  const connector = { allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'token {{secret}}' }, secretValue: 'bob-secret-value' };

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'mallory');
    bob = await h.tokenFor('member', 'bob');
    expect((await h.api(bob.token, 'PUT', '/api/v1/me/connectors/gh', connector)).status).toBe(200);
  });
  afterAll(async () => h?.close());

  const events = async (since = 0) => (await h.api(h.ownerToken, 'GET', '/api/v1/audit?type=admin-change&limit=10000')).body.events.filter((e: { seq: number }) => e.seq > since);
  const lastSeq = async () => Math.max(0, ...(await events()).map((e: { seq: number }) => e.seq));
  const tokenIdOf = async (token: string, name: string) => (await h.api(token, 'GET', '/api/v1/tokens')).body.find((t: { name: string }) => t.name === name).id as string;

  it('refuses to mint a token in anyone else’s name: the owner, a member, whatever the role asked', async () => {
    const before = (await h.store.db.selectFrom('api_tokens').select('id').execute()).length;
    const mark = await lastSeq();
    for (const [target, role] of [[h.ownerMemberId, 'member'], [h.ownerMemberId, 'admin'], [bob.memberId, 'member'], [bob.memberId, undefined]] as const) {
      const res = await h.api(admin.token, 'POST', '/api/v1/tokens', { name: `as-${target}`, memberId: target, ...(role ? { role } : {}) });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain('memberId');
      expect(res.body.token).toBeUndefined();
    }
    // The owner cannot either: tokens are for oneself.
    expect((await h.api(h.ownerToken, 'POST', '/api/v1/tokens', { name: 'for-bob', memberId: bob.memberId })).status).toBe(400);
    expect((await h.store.db.selectFrom('api_tokens').select('id').execute()).length).toBe(before);
    expect((await events(mark)).filter((e: { action: string }) => e.action === 'token.create')).toEqual([]);
    // Everyone keeps working.
    expect((await h.api(h.ownerToken, 'GET', '/api/v1/org')).status).toBe(200);
    expect((await h.api(bob.token, 'GET', '/api/v1/me/connectors')).body).toHaveLength(1);
  });

  it('a token is for its caller: minting one for yourself works and is recorded as you, with the credential you used', async () => {
    const mark = await lastSeq();
    const res = await h.api(admin.token, 'POST', '/api/v1/tokens', { name: 'ci', role: 'member' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ memberId: admin.memberId, role: 'member', createdBy: admin.memberId });
    const adminTokenId = await tokenIdOf(admin.token, 'mallory');
    const [created] = (await events(mark)).filter((e: { action: string }) => e.action === 'token.create');
    expect(created).toMatchObject({ actor: admin.memberId, credential: `token:${adminTokenId}`, member: admin.memberId, target: `token:${res.body.id}` });
  });

  it('an admin cannot revoke the owner’s tokens, not even the owner’s weaker ones', async () => {
    const ownerFirst = await tokenIdOf(h.ownerToken, 'first-run');
    const weak = await h.api(h.ownerToken, 'POST', '/api/v1/tokens', { name: 'owner-script', role: 'member' });
    expect(weak.status).toBe(201);
    for (const id of [ownerFirst, weak.body.id as string]) {
      const res = await h.api(admin.token, 'DELETE', `/api/v1/tokens/${id}`);
      expect(res.status).toBe(403);
    }
    expect((await h.api(h.ownerToken, 'GET', '/api/v1/org')).status).toBe(200);
    expect((await h.api(weak.body.token, 'GET', '/api/v1/me/connectors')).status).toBe(200);
  });

  it('no route lets an admin re-point another member’s personal connector', async () => {
    const before = (await h.api(bob.token, 'GET', '/api/v1/me/connectors/gh')).body;
    // The only connector routes are /me/...: the admin's PUT makes the admin's own connector.
    const own = await h.api(admin.token, 'PUT', '/api/v1/me/connectors/gh', { ...connector, allowedWebsites: ['evil.example'], secretValue: 'x' });
    expect(own.status).toBe(200);
    expect((await h.api(admin.token, 'PUT', `/api/v1/members/${bob.memberId}/connectors/gh`, { ...connector, allowedWebsites: ['evil.example'] })).status).toBe(404);
    // A member named in the query is not an input: it is the caller's own connector again.
    expect((await h.api(admin.token, 'PUT', `/api/v1/me/connectors/gh?memberId=${bob.memberId}`, { ...connector, allowedWebsites: ['evil.example'] })).status).toBe(200);
    const after = (await h.api(bob.token, 'GET', '/api/v1/me/connectors/gh')).body;
    expect(after).toEqual(before);
    expect(after.allowedWebsites).toEqual(['api.github.com']);
  });

  it('every admin-change made through the API names the real caller and the token it used', async () => {
    const mark = await lastSeq();
    const adminTokenId = await tokenIdOf(admin.token, 'mallory');
    const bobTokenId = await tokenIdOf(bob.token, 'bob');
    const ws = await h.api(admin.token, 'POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T-imp', name: 'imp' });
    await h.api(admin.token, 'POST', `/api/v1/workspaces/${ws.body.id}/channels`, { externalId: 'C-imp', name: 'imp' });
    await h.api(admin.token, 'PUT', '/api/v1/bundles/imp', { domains: ['imp.example.com'] });
    await h.api(admin.token, 'POST', '/api/v1/bundles/imp/scopes', { scope: 'org' });
    await h.api(admin.token, 'PUT', '/api/v1/secrets/imp-secret', { value: 'v' });
    await h.api(admin.token, 'PUT', `/api/v1/members/${bob.memberId}/roles`, { roles: ['eng'] });
    await h.api(bob.token, 'PUT', '/api/v1/me/connectors/gh2', { ...connector, allowedWebsites: ['gitlab.com'], secretValue: 'v2' });
    await h.api(bob.token, 'DELETE', '/api/v1/me/connectors/gh2');
    const got = await events(mark);
    expect(got.length).toBe(10);
    for (const e of got) {
      const expected = e.actor === admin.memberId ? `token:${adminTokenId}` : `token:${bobTokenId}`;
      expect([e.action, e.actor]).toEqual([e.action, expect.stringMatching(new RegExp(`^(${admin.memberId}|${bob.memberId})$`))]);
      expect([e.action, e.credential]).toEqual([e.action, expected]);
    }
    expect(got.filter((e: { actor: string }) => e.actor === bob.memberId).map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(['secret.create', 'create', 'delete', 'secret.remove']),
    );
  });

  it('the operator path mints a member-role token for a member, audited as the operator, never as the member', async () => {
    const mark = await lastSeq();
    // Even for an admin member, the operator's token is member-role.
    const token = await h.operatorToken(admin.memberId, 'from-the-shell');
    expect((await h.api(token, 'GET', '/api/v1/bundles')).status).toBe(403);
    expect((await h.api(token, 'GET', '/api/v1/me/connectors')).status).toBe(200);
    // ...and it cannot mint itself anything stronger.
    expect((await h.api(token, 'POST', '/api/v1/tokens', { name: 'up', role: 'admin' })).status).toBe(403);
    const [created] = (await events(mark)).filter((e: { action: string }) => e.action === 'token.create');
    expect(created).toMatchObject({ actor: 'operator:test', member: admin.memberId, role: 'member', name: 'from-the-shell' });
    expect(created.credential).toBeUndefined();
  });
});
