import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import type { BundleSpec } from '../../src/access/model.js';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore } from '../../src/store/database.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from './fixtures.js';

const github: BundleSpec = {
  name: 'platform',
  domains: [{ host: 'registry.npmjs.org' }],
  connections: [{ name: 'github', secret: 'gh-token', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } }],
};

describe.each(BACKENDS)('AccessAdmin on %s', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
  });
  afterEach(async () => w.close());

  async function adminEvents() {
    const out = [];
    for await (const e of w.audit.query({ type: 'admin-change' })) out.push(e);
    return out;
  }

  it('ensureDefaultOrg is idempotent, also when several stores call it at once', async () => {
    const again = await w.admin.ensureDefaultOrg();
    expect(again.id).toBe(w.org.id);
    // Several SQLite connections in one thread would block each other synchronously;
    // the cross-process SQLite case runs through the CLI (bundle.test.ts).
    if (backendName === 'sqlite') return;
    const fresh = await (await import('../helpers/backends.js')).createTestBackend(backendName);
    const stores = await Promise.all([1, 2, 3, 4].map(() => openControlStore(fresh.location)));
    try {
      const orgs = await Promise.all(stores.map((s) => new AccessAdmin(s, new AuditLog(s)).ensureDefaultOrg()));
      expect(new Set(orgs.map((o) => o.id)).size).toBe(1);
    } finally {
      for (const s of stores) await s.close();
      await fresh.cleanup();
    }
  });

  it('each change bumps the revision once and writes one admin-change event with the fields changed', async () => {
    const r0 = await w.admin.policyRevision(w.org.id);
    const before = (await adminEvents()).length;
    await w.admin.putBundle('alice', w.org.id, github);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0 + 1);
    await w.admin.putBundle('alice', w.org.id, { ...github, domains: [{ host: 'pypi.org' }] });
    await w.admin.putBundle('alice', w.org.id, { ...github, domains: [{ host: 'pypi.org' }] }); // no-op still one event, empty fields
    await w.admin.attach('alice', w.org.id, 'platform', { kind: 'channel', id: w.eng.id });
    await w.admin.attach('alice', w.org.id, 'platform', { kind: 'channel', id: w.eng.id }); // already attached: nothing
    await w.admin.detach('alice', w.org.id, 'platform', { kind: 'channel', id: w.eng.id });
    await w.admin.updateOrgSettings('alice', w.org.id, { dmsAllowed: false, retentionDays: 365 });
    const events = (await adminEvents()).slice(before);
    expect(events.map((e) => [e.actor, e.target, e.action, e.fields])).toEqual([
      ['alice', 'bundle:platform', 'create', ['domains', 'connections']],
      ['alice', 'bundle:platform', 'update', ['domains']],
      ['alice', 'bundle:platform', 'update', []],
      ['alice', 'bundle:platform', 'attach', ['scopes']],
      ['alice', 'bundle:platform', 'detach', ['scopes']],
      ['alice', `org:${w.org.id}`, 'update-settings', ['dmsAllowed']],
    ]);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0 + 6);
  });

  it('never records a secret value; connections hold vault names only', async () => {
    await w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, {
      name: 'my-gh', allowedWebsites: ['api.github.com'], inject: { basic: { username: 'x-access-token' } },
    });
    const [event] = (await adminEvents()).slice(-1);
    expect(event).toMatchObject({ actor: w.ada.id, target: `member:${w.ada.id}/connector:my-gh`, action: 'create' });
    expect(JSON.stringify(event)).not.toContain(personalSecretName(w.ada.id, 'my-gh'));
  });

  it('records the change in the same transaction: if the audit write fails, the change does not happen', async () => {
    const r0 = await w.admin.policyRevision(w.org.id);
    // Break the audit log underneath the service: its append must take the change down with it.
    await sql`alter table audit_events rename to audit_events_away`.execute(w.store.db);
    await expect(w.admin.putBundle('alice', w.org.id, github)).rejects.toThrow();
    await sql`alter table audit_events_away rename to audit_events`.execute(w.store.db);
    expect(await w.admin.listBundles(w.org.id)).toEqual([]);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0);
    // And when it works, change and record are both there.
    await w.admin.putBundle('alice', w.org.id, github);
    expect((await adminEvents()).some((e) => e.target === 'bundle:platform' || String(e.target).includes('platform'))).toBe(true);
  });

  it('refuses an invalid spec naming the field, and stores nothing', async () => {
    const r0 = await w.admin.policyRevision(w.org.id);
    const bad = { ...github, connections: [{ ...github.connections[0]!, inject: { header: 'Host', value: 'Bearer {{secret}}' } }] };
    await expect(w.admin.putBundle('alice', w.org.id, bad)).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('inject.header') });
    await expect(w.admin.putBundle('alice', w.org.id, { ...github, domains: [{ host: '*' }] })).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('domains[0]') });
    expect(await w.admin.listBundles(w.org.id)).toEqual([]);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0);
  });

  it('refuses a change that makes a place ambiguous, and rolls it back', async () => {
    await w.admin.putBundle('alice', w.org.id, github);
    await w.admin.putBundle('alice', w.org.id, { ...github, name: 'other', domains: [] });
    await w.admin.attach('alice', w.org.id, 'platform', { kind: 'org' });
    await expect(w.admin.attach('alice', w.org.id, 'other', { kind: 'channel', id: w.eng.id })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('channel "eng"'),
    });
    expect(await w.admin.bundleScopes(w.org.id, 'other')).toEqual([]);
  });

  it('reads: workspaces, channels, members with roles', async () => {
    expect((await w.admin.listWorkspaces(w.org.id)).map((x) => x.name)).toEqual(['acme-eng', 'acme-sales']);
    expect((await w.admin.listChannels(w.ws1.id)).map((x) => x.name)).toEqual(['eng', 'random']);
    expect((await w.admin.getChannel(w.sales.id)).isPrivate).toBe(true);
    expect((await w.admin.getWorkspace(w.ws2.id)).kind).toBe('web');
    await w.admin.setMemberRoles('o', w.bob.id, ['ops', 'eng']);
    expect((await w.admin.listMembers(w.ws1.id)).map((m) => [m.displayName, m.roles])).toEqual([['Ada', ['eng']], ['Bob', ['eng', 'ops']]]);
    await expect(w.admin.getMember('nope')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('applyBundles is all or nothing, and vetted on the final state only', async () => {
    const conn = github.connections[0]!;
    await w.admin.applyBundles('cli', w.org.id, [
      { name: 'a', domains: [], connections: [conn] },
      { name: 'b', domains: [{ host: 'b.example.com' }], connections: [] },
    ]);
    await w.admin.attach('cli', w.org.id, 'a', { kind: 'org' });
    await w.admin.attach('cli', w.org.id, 'b', { kind: 'org' });
    const r0 = await w.admin.policyRevision(w.org.id);
    // Moving the connection from a to b: putting b first alone would be ambiguous.
    const plan = await w.admin.applyBundles('cli', w.org.id, [
      { name: 'b', domains: [{ host: 'b.example.com' }], connections: [conn] },
      { name: 'a', domains: [], connections: [] },
    ]);
    expect(plan.map((p) => `${p.op} ${p.name}`)).toEqual(['update b', 'update a']);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0 + 1);
    // A file whose final state is ambiguous changes nothing at all.
    const before = await w.admin.listBundles(w.org.id);
    await expect(
      w.admin.applyBundles('cli', w.org.id, [
        { name: 'c', domains: [{ host: 'c.example.com' }], connections: [] },
        { name: 'a', domains: [], connections: [conn] },
      ]),
    ).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('refused: in the org') });
    expect(await w.admin.listBundles(w.org.id)).toEqual(before);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0 + 1);
    await expect(w.admin.applyBundles('cli', w.org.id, [github, github])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('given twice') });
  });

  it('unknown names are exit-2 not_found errors', async () => {
    await expect(w.admin.attach('a', w.org.id, 'nope', { kind: 'org' })).rejects.toMatchObject({ exitCode: 2, code: 'not_found' });
    await w.admin.putBundle('a', w.org.id, github);
    await expect(w.admin.attach('a', w.org.id, 'platform', { kind: 'channel', id: 'zzz' })).rejects.toMatchObject({ code: 'not_found' });
    expect(await w.admin.deleteBundle('a', w.org.id, 'nope')).toBe(false);
    expect(await w.admin.deleteBundle('a', w.org.id, 'platform')).toBe(true);
  });
});

describe.each(BACKENDS)('AccessAdmin input from API clients on %s', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
  });
  afterEach(async () => w.close());

  it('malformed specs are exit-2 errors naming the field, never crashes', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ name: 'x', domains: 'a.example.com', connections: [] }, /domains/],
      [{ name: 'x', domains: [42], connections: [] }, /domains\[0\]/],
      [{ name: 'x', domains: [], connections: [{ name: 'c', secret: 'Not A Name', allowedWebsites: ['a.example.com'], inject: { basic: { username: 'u' } } }] }, /secret/],
      [{ name: 'x', domains: [], connections: [{ name: 'c', secret: 's', allowedWebsites: 'a.example.com', inject: { basic: { username: 'u' } } }] }, /allowedWebsites/],
      [{ name: 'bad name!', domains: [], connections: [] }, /name/],
    ];
    for (const [spec, field] of cases) {
      await expect(w.admin.putBundle('api', w.org.id, spec as BundleSpec)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(field) });
    }
    await expect(
      w.admin.putPersonalConnector('api', w.org.id, w.ada.id, { name: 'c', allowedWebsites: [], inject: { basic: { username: 'u' } } }),
    ).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/allowedWebsites/) });
    expect(await w.admin.listBundles(w.org.id)).toEqual([]);
    expect(await w.admin.listPersonalConnectors(w.ada.id)).toEqual([]);
  });

  it('org settings are validated and only changed fields are recorded', async () => {
    await expect(w.admin.updateOrgSettings('o', w.org.id, { memberAccess: 'everyone' as never })).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('memberAccess') });
    await expect(w.admin.updateOrgSettings('o', w.org.id, { retentionDays: 0 })).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('retentionDays') });
    const org = await w.admin.updateOrgSettings('o', w.org.id, { memberAccess: 'roles', memberAccessRoles: ['eng'], zeroDataRetention: false });
    expect(org).toMatchObject({ memberAccess: 'roles', memberAccessRoles: ['eng'], zeroDataRetention: false });
    let last;
    for await (const e of w.audit.query({ type: 'admin-change' })) last = e;
    expect(last).toMatchObject({ actor: 'o', action: 'update-settings', fields: ['memberAccess', 'memberAccessRoles'] });
  });
});
