import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import { createToken } from '../../src/server/tokens-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

/** Attacks on roles and on other people's and other orgs' data, as a member and as an admin holding a token. */
describe.each(BACKENDS)('privilege escalation over the API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  let other: { token: string; memberId: string };
  const rolesOf = async (id: string) =>
    (await h.api(h.ownerToken, 'GET', `/api/v1/workspaces/${h.webWorkspaceId}/members`)).body.find((m: { id: string }) => m.id === id).roles as string[];

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'mallory');
    member = await h.tokenFor('member', 'bob');
    other = await h.tokenFor('member', 'carol');
  });
  afterAll(async () => h?.close());

  it('an admin cannot make itself (or anyone) owner, nor create an owner', async () => {
    for (const roles of [['owner'], ['admin', 'owner']]) {
      const self = await h.api(admin.token, 'PUT', `/api/v1/members/${admin.memberId}/roles`, { roles });
      expect(self.status).toBe(403);
      expect(self.body.error.message).toContain('roles');
      expect((await h.api(admin.token, 'PUT', `/api/v1/members/${member.memberId}/roles`, { roles })).status).toBe(403);
    }
    const created = await h.api(admin.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/members`, { externalId: 'sock', displayName: 'sock', roles: ['owner'] });
    expect(created.status).toBe(403);
    expect(await rolesOf(admin.memberId)).toEqual(['admin']);
    expect(await rolesOf(member.memberId)).toEqual([]);
    // A token the admin minted for itself cannot be an owner's either.
    expect((await h.api(admin.token, 'POST', '/api/v1/tokens', { name: 'up', role: 'owner' })).status).toBe(403);
    expect((await h.api(admin.token, 'PATCH', '/api/v1/org', { dmsAllowed: false })).status).toBe(403);
  });

  it('an admin cannot change an owner’s roles at all (not even a chat role), nor demote them', async () => {
    await h.api(h.ownerToken, 'PUT', `/api/v1/members/${h.ownerMemberId}/roles`, { roles: ['eng', 'owner'] });
    for (const roles of [['owner'], [], ['admin'], ['eng', 'owner', 'ops']]) {
      expect((await h.api(admin.token, 'PUT', `/api/v1/members/${h.ownerMemberId}/roles`, { roles })).status).toBe(403);
    }
    expect(await rolesOf(h.ownerMemberId)).toEqual(['eng', 'owner']);
    expect((await h.api(h.ownerToken, 'GET', '/api/v1/org')).status).toBe(200);
  });

  it('an owner acting through an admin-role token is an admin: it cannot grant owner', async () => {
    const weak = await h.api(h.ownerToken, 'POST', '/api/v1/tokens', { name: 'owner-as-admin', role: 'admin' });
    expect(weak.status).toBe(201);
    expect((await h.api(weak.body.token, 'PUT', `/api/v1/members/${admin.memberId}/roles`, { roles: ['owner'] })).status).toBe(403);
    expect((await h.api(weak.body.token, 'PATCH', '/api/v1/org', { dmsAllowed: false })).status).toBe(403);
    expect(await rolesOf(admin.memberId)).toEqual(['admin']);
  });

  it('a member changes no roles, not even their own, and mints nothing stronger than member', async () => {
    for (const [id, roles] of [[member.memberId, ['admin']], [member.memberId, ['owner']], [other.memberId, ['admin']], [admin.memberId, []]] as const) {
      const res = await h.api(member.token, 'PUT', `/api/v1/members/${id}/roles`, { roles });
      expect(res.status).toBe(403);
    }
    expect((await h.api(member.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/members`, { externalId: 'x', displayName: 'x', roles: ['admin'] })).status).toBe(403);
    for (const role of ['admin', 'owner']) expect((await h.api(member.token, 'POST', '/api/v1/tokens', { name: `t-${role}`, role })).status).toBe(403);
    expect(await rolesOf(member.memberId)).toEqual([]);
    expect(await rolesOf(admin.memberId)).toEqual(['admin']);
  });

  it('admins manage admins; a demotion takes effect on the demoted token at once', async () => {
    const dana = await h.tokenFor('admin', 'dana');
    expect((await h.api(admin.token, 'PUT', `/api/v1/members/${dana.memberId}/roles`, { roles: [] })).status).toBe(200);
    expect((await h.api(dana.token, 'GET', '/api/v1/bundles')).status).toBe(403);
    expect((await h.api(dana.token, 'PUT', `/api/v1/members/${dana.memberId}/roles`, { roles: ['admin'] })).status).toBe(403);
  });

  it('the org keeps an owner: the last one cannot drop the role, a second one makes it possible', async () => {
    const last = await h.api(h.ownerToken, 'PUT', `/api/v1/members/${h.ownerMemberId}/roles`, { roles: ['eng'] });
    expect(last.status).toBe(409);
    expect(last.body.error.message).toContain('last owner');
    expect(await rolesOf(h.ownerMemberId)).toEqual(['eng', 'owner']);
    const second = await h.tokenFor('owner', 'olga');
    expect((await h.api(second.token, 'PUT', `/api/v1/members/${second.memberId}/roles`, { roles: [] })).status).toBe(200);
    expect((await h.api(second.token, 'GET', '/api/v1/org')).status).toBe(403);
  });

  it('a member reads nobody else’s data and revokes nobody else’s token', async () => {
    await h.api(other.token, 'PUT', '/api/v1/me/connectors/carol-gh', { allowedWebsites: ['api.github.com'], inject: { basic: { username: 'x' } }, secretValue: 'carol' });
    const otherToken = (await h.api(other.token, 'GET', '/api/v1/tokens')).body[0].id as string;
    expect((await h.api(member.token, 'GET', '/api/v1/tokens')).body.every((t: { memberId: string }) => t.memberId === member.memberId)).toBe(true);
    expect((await h.api(member.token, 'DELETE', `/api/v1/tokens/${otherToken}`)).status).toBe(404);
    expect((await h.api(member.token, 'GET', '/api/v1/me/connectors')).body.map((c: { name: string }) => c.name)).not.toContain('carol-gh');
    expect((await h.api(member.token, 'GET', '/api/v1/me/connectors/carol-gh')).status).toBe(404);
    for (const path of [`/api/v1/workspaces/${h.webWorkspaceId}/members`, '/api/v1/audit', '/api/v1/secrets', '/api/v1/bundles', '/api/v1/org']) {
      expect([path, (await h.api(member.token, 'GET', path)).status]).toEqual([path, 403]);
    }
    expect((await h.api(other.token, 'GET', '/api/v1/me/connectors')).body).toHaveLength(1);
  });

  it('an admin acts on no other org’s ids: they are not found, and the other org is untouched', async () => {
    // A second tenant in the same database.
    const org2 = await createOrg(h.store.db, 'other-org');
    const ws2 = await createWorkspace(h.store.db, { orgId: org2.id, kind: 'slack', externalId: 'T-2', name: 'other' });
    const ch2 = await createChannel(h.store.db, { workspaceId: ws2.id, externalId: 'C-2', name: 'secret-plans' });
    const m2 = await createMember(h.store.db, { workspaceId: ws2.id, externalId: 'U-2', displayName: 'victim', roles: ['admin'] });
    const t2 = await createToken(h.store.db, { orgId: org2.id, memberId: m2.id, role: 'admin', name: 'victim', createdBy: 'system' });
    await h.api(admin.token, 'PUT', '/api/v1/bundles/mine', { domains: ['mine.example.com'] });

    const attempts: Array<[string, string, unknown?]> = [
      ['PUT', `/api/v1/members/${m2.id}/roles`, { roles: [] }],
      ['GET', `/api/v1/workspaces/${ws2.id}/members`],
      ['GET', `/api/v1/workspaces/${ws2.id}/channels`],
      ['POST', `/api/v1/workspaces/${ws2.id}/channels`, { externalId: 'C-3', name: 'planted' }],
      ['POST', `/api/v1/workspaces/${ws2.id}/members`, { externalId: 'U-3', displayName: 'planted', roles: ['admin'] }],
      ['POST', '/api/v1/bundles/mine/scopes', { scope: `channel:${ch2.id}` }],
      ['POST', '/api/v1/bundles/mine/scopes', { scope: `workspace:${ws2.id}` }],
      ['DELETE', `/api/v1/tokens/${t2.record.id}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await h.api(admin.token, method, path, body);
      expect([method, path, res.status]).toEqual([method, path, 404]);
    }
    // Untouched: the victim's roles, channels, members and token.
    expect((await h.api(t2.token, 'GET', '/api/v1/bundles')).body).toEqual([]);
    expect((await h.api(t2.token, 'GET', `/api/v1/workspaces/${ws2.id}/channels`)).body.map((c: { name: string }) => c.name)).toEqual(['secret-plans']);
    expect((await h.api(t2.token, 'GET', `/api/v1/workspaces/${ws2.id}/members`)).body.map((m: { roles: string[] }) => m.roles)).toEqual([['admin']]);
    // ...and the other org's admin reaches nothing of ours either.
    expect((await h.api(t2.token, 'GET', `/api/v1/workspaces/${h.webWorkspaceId}/members`)).status).toBe(404);
    expect((await h.api(t2.token, 'PUT', `/api/v1/members/${admin.memberId}/roles`, { roles: [] })).status).toBe(404);
    expect(await rolesOf(admin.memberId)).toEqual(['admin']);
  });
});
