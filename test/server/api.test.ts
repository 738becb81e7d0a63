import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

const bundle = {
  description: 'platform',
  domains: ['registry.npmjs.org', { host: 'internal.example.com', ports: [8443] }],
  connections: [{ name: 'github', secret: 'gh-token', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } }],
};

describe.each(BACKENDS)('admin API over HTTP (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  let other: { token: string; memberId: string };
  let channelId: string;
  const canary = `canary-${randomBytes(16).toString('hex')}`;
  const personalCanary = `pcanary-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'alice');
    member = await h.tokenFor('member', 'bob');
    other = await h.tokenFor('member', 'carol');
  });
  afterAll(async () => h?.close());

  it('answers 401 without a token and with a bad one; /healthz and /metrics are open', async () => {
    expect((await h.api(undefined, 'GET', '/api/v1/bundles')).status).toBe(401);
    const bad = await h.api('tbx_nope', 'GET', '/api/v1/bundles');
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('unauthenticated');
    expect((await h.api(`${h.ownerToken}x`, 'GET', '/api/v1/org')).status).toBe(401);
    expect((await h.api(undefined, 'GET', '/healthz')).status).toBe(200);
    const metrics = await h.api(undefined, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('tagbox_server_requests_total');
  });

  it('lets an admin build the access setup: workspace, channel, bundle, secret, scopes', async () => {
    const ws = await h.api(admin.token, 'POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T123', name: 'Acme' });
    expect(ws.status).toBe(201);
    const ch = await h.api(admin.token, 'POST', `/api/v1/workspaces/${ws.body.id}/channels`, { externalId: 'C1', name: 'eng' });
    expect(ch.status).toBe(201);
    channelId = ch.body.id;
    expect((await h.api(admin.token, 'GET', `/api/v1/workspaces/${ws.body.id}/channels`)).body).toHaveLength(1);

    const put = await h.api(admin.token, 'PUT', '/api/v1/bundles/platform-eng', bundle);
    expect(put.status).toBe(200);
    expect(put.body.name).toBe('platform-eng');
    const secret = await h.api(admin.token, 'PUT', '/api/v1/secrets/gh-token', { value: canary });
    expect(secret.status).toBe(200);
    expect(secret.body).toMatchObject({ name: 'gh-token', kind: 'static', version: 1 });
    expect(secret.body.value).toBeUndefined();

    for (const scope of ['org', `workspace:${ws.body.id}`, `channel:${channelId}`]) {
      expect((await h.api(admin.token, 'POST', '/api/v1/bundles/platform-eng/scopes', { scope })).status).toBe(200);
    }
    const got = await h.api(admin.token, 'GET', '/api/v1/bundles/platform-eng');
    expect(got.body.scopes).toEqual(expect.arrayContaining(['org', `workspace:${ws.body.id}`, `channel:${channelId}`]));
    expect((await h.api(admin.token, 'DELETE', '/api/v1/bundles/platform-eng/scopes', { scope: 'org' })).status).toBe(200);

    const secrets = await h.api(admin.token, 'GET', '/api/v1/secrets');
    expect(secrets.body).toEqual([
      expect.objectContaining({ name: 'gh-token', version: 1, usedBy: [{ bundle: 'platform-eng', connection: 'github', scopes: expect.arrayContaining([`channel:${channelId}`]) }], sent: true }),
    ]);
    // A secret that no attached bundle uses is not sent anywhere.
    await h.api(admin.token, 'PUT', '/api/v1/secrets/spare', { value: 'x' });
    expect((await h.api(admin.token, 'GET', '/api/v1/secrets')).body.find((x: { name: string }) => x.name === 'spare')).toMatchObject({ usedBy: [], sent: false });

    const members = await h.api(admin.token, 'GET', `/api/v1/workspaces/${h.webWorkspaceId}/members`);
    expect(members.body.map((m: { displayName: string }) => m.displayName)).toEqual(expect.arrayContaining(['Owner', 'alice', 'bob']));
    expect((await h.api(admin.token, 'PUT', `/api/v1/members/${member.memberId}/roles`, { roles: ['eng'] })).body.roles).toEqual(['eng']);
    expect((await h.api(admin.token, 'GET', '/api/v1/audit?type=admin-change&limit=500')).body.events.length).toBeGreaterThan(5);
  });

  it('keeps org settings to the owner', async () => {
    const byAdmin = await h.api(admin.token, 'PATCH', '/api/v1/org', { dmsAllowed: false });
    expect(byAdmin.status).toBe(403);
    expect((await h.api(admin.token, 'GET', '/api/v1/org')).body.dmsAllowed).toBe(true);
    const byOwner = await h.api(h.ownerToken, 'PATCH', '/api/v1/org', { dmsAllowed: false, memberAccess: 'roles', memberAccessRoles: ['eng'] });
    expect(byOwner.status).toBe(200);
    expect(byOwner.body).toMatchObject({ dmsAllowed: false, memberAccess: 'roles', memberAccessRoles: ['eng'] });
    // Admins cannot make or unmake owners either.
    expect((await h.api(admin.token, 'PUT', `/api/v1/members/${member.memberId}/roles`, { roles: ['owner'] })).status).toBe(403);
    expect((await h.api(admin.token, 'PUT', `/api/v1/members/${h.ownerMemberId}/roles`, { roles: [] })).status).toBe(403);
    expect((await h.api(admin.token, 'POST', '/api/v1/tokens', { name: 'x', role: 'owner' })).status).toBe(403);
  });

  it('lets a member touch nothing but their own connectors and tokens', async () => {
    const t = member.token;
    const denied: Array<[string, string, unknown?]> = [
      ['GET', '/api/v1/bundles'],
      ['GET', '/api/v1/bundles/platform-eng'],
      ['PUT', '/api/v1/bundles/mine', { domains: ['example.com'] }],
      ['DELETE', '/api/v1/bundles/platform-eng'],
      ['POST', '/api/v1/bundles/platform-eng/scopes', { scope: 'org' }],
      ['DELETE', '/api/v1/bundles/platform-eng/scopes', { scope: `channel:${channelId}` }],
      ['GET', '/api/v1/secrets'],
      ['PUT', '/api/v1/secrets/gh-token', { value: 'x' }],
      ['DELETE', '/api/v1/secrets/gh-token'],
      ['GET', '/api/v1/org'],
      ['PATCH', '/api/v1/org', { dmsAllowed: true }],
      ['GET', '/api/v1/workspaces'],
      ['POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T9', name: 'x' }],
      ['GET', `/api/v1/workspaces/${h.webWorkspaceId}/members`],
      ['PUT', `/api/v1/members/${t === member.token ? member.memberId : ''}/roles`, { roles: ['admin'] }],
      ['GET', '/api/v1/audit'],
      ['POST', '/api/v1/tokens', { name: 'x', role: 'admin' }],
    ];
    for (const [method, path, body] of denied) {
      const res = await h.api(t, method, path, body);
      expect([method, path, res.status]).toEqual([method, path, 403]);
      expect(res.body.error.code).toBe('forbidden');
    }

    const put = await h.api(t, 'PUT', '/api/v1/me/connectors/my-gh', {
      allowedWebsites: ['api.github.com'],
      inject: { header: 'Authorization', value: 'token {{secret}}' },
      secretValue: personalCanary,
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'my-gh', secret: { kind: 'static', version: 1 } });
    expect((await h.api(t, 'GET', '/api/v1/me/connectors')).body).toHaveLength(1);
    // Another member sees none of it, and cannot delete it.
    expect((await h.api(other.token, 'GET', '/api/v1/me/connectors')).body).toEqual([]);
    expect((await h.api(other.token, 'GET', '/api/v1/me/connectors/my-gh')).status).toBe(404);
    expect((await h.api(other.token, 'DELETE', '/api/v1/me/connectors/my-gh')).status).toBe(404);
    // A connector cannot name a vault secret: the org's gh-token stays out of reach.
    const steal = await h.api(t, 'PUT', '/api/v1/me/connectors/steal', { allowedWebsites: ['evil.example'], inject: { header: 'X', value: '{{secret}}' }, secret: 'gh-token' });
    expect(steal.status).toBe(400);
    expect(steal.body.error.message).toContain('secret');
    // Personal secrets are not reachable through the org's secret endpoints either.
    const tokens = await h.api(t, 'GET', '/api/v1/tokens');
    expect(tokens.body.every((x: { memberId: string }) => x.memberId === member.memberId)).toBe(true);
    const ownerTokenId = (await h.api(h.ownerToken, 'GET', '/api/v1/tokens')).body.find((x: { role: string }) => x.role === 'owner').id;
    expect((await h.api(t, 'DELETE', `/api/v1/tokens/${ownerTokenId}`)).status).toBe(404);
    expect((await h.api(admin.token, 'DELETE', `/api/v1/tokens/${ownerTokenId}`)).status).toBe(403);
  });

  it('never lets a token outrank its member: a demotion takes effect at once', async () => {
    const dana = await h.tokenFor('admin', 'dana');
    expect((await h.api(dana.token, 'GET', '/api/v1/bundles')).status).toBe(200);
    expect((await h.api(h.ownerToken, 'PUT', `/api/v1/members/${dana.memberId}/roles`, { roles: [] })).status).toBe(200);
    expect((await h.api(dana.token, 'GET', '/api/v1/bundles')).status).toBe(403);
    expect((await h.api(dana.token, 'GET', '/api/v1/me/connectors')).status).toBe(200);
  });

  it('names the field in validation errors', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['PATCH', '/api/v1/org', { retentionDays: 'x' }, 'body.retentionDays'],
      ['PATCH', '/api/v1/org', { nope: 1 }, 'body'],
      ['PUT', '/api/v1/bundles/b1', { connections: [{ ...bundle.connections[0], inject: { header: 'Host', value: '{{secret}}' } }] }, 'body.connections[0].inject.header'],
      ['PUT', '/api/v1/bundles/b1', { domains: ['*'] }, 'body.domains[0]'],
      ['PUT', '/api/v1/bundles/b1', { connections: [bundle.connections[0], bundle.connections[0]] }, 'body.connections.1.name'],
      ['POST', '/api/v1/bundles/platform-eng/scopes', { scope: 'planet:1' }, 'body.scope'],
      ['PUT', '/api/v1/secrets/Bad Name', { value: 'x' }, 'params.name'],
      ['PUT', '/api/v1/secrets/ok', {}, 'body.value'],
      ['GET', '/api/v1/audit?limit=0', undefined, 'query.limit'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await h.api(h.ownerToken, method, path, body);
      expect([path, res.status]).toEqual([path, 400]);
      expect(res.body.error.message).toContain(field);
    }
    const broken = await h.api(h.ownerToken, 'PUT', '/api/v1/bundles/b1', '{"domains": [');
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBeTruthy();
    expect((await h.api(h.ownerToken, 'GET', '/api/v1/bundles/nope')).status).toBe(404);
    expect((await h.api(h.ownerToken, 'GET', '/api/v1/workspaces/nope/channels')).status).toBe(404);
    expect((await h.api(h.ownerToken, 'POST', '/api/v1/bundles/platform-eng/scopes', { scope: 'channel:nope' })).status).toBe(404);
  });

  it('stores tokens hashed: the database never holds a token', async () => {
    const rows = await h.store.db.selectFrom('api_tokens').selectAll().execute();
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const dump = JSON.stringify(rows);
    for (const t of [h.ownerToken, admin.token, member.token, other.token]) {
      expect(dump).not.toContain(t);
      expect(dump).not.toContain(t.slice(4));
    }
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.token_hash))).toBe(true);
    const revoked = await h.api(other.token, 'GET', '/api/v1/tokens');
    expect(JSON.stringify(revoked.body)).not.toContain('tbx_');
    expect((await h.api(other.token, 'DELETE', `/api/v1/tokens/${revoked.body[0].id}`)).status).toBe(204);
    expect((await h.api(other.token, 'GET', '/api/v1/me/connectors')).status).toBe(401);
  });

  it('never returns a secret value: every endpoint, the audit log, the OpenAPI document and the logs', async () => {
    const doc = await h.api(undefined, 'GET', '/api/v1/openapi.json');
    const gets = Object.keys(doc.body.paths as Record<string, Record<string, unknown>>)
      .filter((p) => (doc.body.paths[p] as Record<string, unknown>).get)
      .map((p) =>
        p
          .replace('{id}', h.webWorkspaceId)
          .replace('{name}', p.startsWith('/api/v1/me/') ? 'my-gh' : 'platform-eng'),
      );
    expect(gets.length).toBeGreaterThan(8);
    let seen = doc.text;
    for (const token of [h.ownerToken, admin.token, member.token]) {
      for (const path of gets) seen += (await h.api(token, 'GET', path)).text;
      seen += (await h.api(token, 'GET', '/api/v1/audit?limit=10000')).text;
    }
    seen += h.logs();
    expect(seen).toContain('gh-token'); // the names are there...
    expect(seen).not.toContain(canary); // ...the values never
    expect(seen).not.toContain(personalCanary);
    const rows = await h.store.db.selectFrom('audit_events').select('data').execute();
    expect(JSON.stringify(rows)).not.toContain(canary);
  });

  it('publishes an OpenAPI document listing every route', async () => {
    const res = await fetch(`${h.url}/api/v1/openapi.json`);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(routes).toEqual(
      expect.arrayContaining([
        'GET /api/v1/org',
        'PATCH /api/v1/org',
        'GET /api/v1/workspaces',
        'POST /api/v1/workspaces',
        'GET /api/v1/workspaces/{id}/channels',
        'POST /api/v1/workspaces/{id}/channels',
        'GET /api/v1/workspaces/{id}/members',
        'POST /api/v1/workspaces/{id}/members',
        'PUT /api/v1/members/{id}/roles',
        'GET /api/v1/bundles',
        'GET /api/v1/bundles/{name}',
        'PUT /api/v1/bundles/{name}',
        'DELETE /api/v1/bundles/{name}',
        'POST /api/v1/bundles/{name}/scopes',
        'DELETE /api/v1/bundles/{name}/scopes',
        'GET /api/v1/secrets',
        'PUT /api/v1/secrets/{name}',
        'DELETE /api/v1/secrets/{name}',
        'GET /api/v1/me/connectors',
        'GET /api/v1/me/connectors/{name}',
        'PUT /api/v1/me/connectors/{name}',
        'DELETE /api/v1/me/connectors/{name}',
        'GET /api/v1/audit',
        'POST /api/v1/tokens',
        'GET /api/v1/tokens',
        'DELETE /api/v1/tokens/{id}',
        'GET /healthz',
        'GET /metrics',
      ]),
    );
  });
});
