import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { attachBundle, bundlesAttachedTo, deleteBundle, detachBundle, getBundleByName, listBundles, personalConnectors, putBundle, putPersonalConnector, scopesOf } from '../../src/access/bundles-repo.js';
import { createMember, findMemberByExternalId, getMember, setMemberRoles } from '../../src/access/members-repo.js';
import { createOrg, getOrg, updateOrgSettings } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace, listChannels } from '../../src/access/workspaces-repo.js';
import { migrationStatus, openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

describe.each(BACKENDS)('store on %s', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('runs on the backend it was asked for', async () => {
    expect(store.dialect).toBe(backendName);
    const { rows } = await sql<{ v: string }>`select ${sql.lit(backendName)} as v`.execute(store.db);
    expect(rows[0]?.v).toBe(backendName);
  });

  it('applies every migration once, and re-running is a no-op', async () => {
    expect((await migrationStatus(store)).pending).toEqual([]);
    const again = await openControlStore(backend.location);
    expect((await migrationStatus(again)).applied).toContain('0001_initial');
    await again.close();
  });

  it('migrates exactly once when several processes start at the same time', async () => {
    const fresh = await createTestBackend(backendName);
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runTagbox(['migrate'], { env: fresh.env })));
      for (const run of runs) expect(run.stderr).toBe('');
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0]);
      // Exactly one of them applied the migration; the others found it done.
      expect(runs.filter((r) => r.stdout.startsWith('applied 0001_initial')).length).toBe(1);
      const check = await openControlStore(fresh.location, { migrate: false });
      expect((await migrationStatus(check)).pending).toEqual([]);
      await check.close();
    } finally {
      await fresh.cleanup();
    }
  });

  it('keeps orgs with their settings, and updates them', async () => {
    const org = await createOrg(store.db, 'Acme');
    expect(org).toMatchObject({ memberAccess: 'anyone', dmsAllowed: true, zeroDataRetention: false });
    const updated = await updateOrgSettings(store.db, org.id, { memberAccess: 'roles', memberAccessRoles: ['eng'], dmsAllowed: false });
    expect(updated).toMatchObject({ memberAccess: 'roles', memberAccessRoles: ['eng'], dmsAllowed: false });
    expect(await getOrg(store.db, org.id)).toEqual(updated);
  });

  it('enforces foreign keys and uniqueness', async () => {
    await expect(createChannel(store.db, { workspaceId: 'no-such-workspace', externalId: 'C1', name: 'general' })).rejects.toThrow();
    const org = await createOrg(store.db, 'Acme');
    const ws = await createWorkspace(store.db, { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'acme' });
    await createChannel(store.db, { workspaceId: ws.id, externalId: 'C1', name: 'general' });
    await expect(createChannel(store.db, { workspaceId: ws.id, externalId: 'C1', name: 'again' })).rejects.toThrow();
    expect((await listChannels(store.db, ws.id)).map((c) => c.name)).toEqual(['general']);
  });

  it('keeps members with roles', async () => {
    const org = await createOrg(store.db, 'Acme');
    const ws = await createWorkspace(store.db, { orgId: org.id, kind: 'web', externalId: 'web', name: 'web' });
    const m = await createMember(store.db, { workspaceId: ws.id, externalId: 'U1', displayName: 'Ada', hasAccount: true, roles: ['owner', 'eng'] });
    expect(m.roles).toEqual(['eng', 'owner']);
    await setMemberRoles(store.db, m.id, ['member']);
    expect((await getMember(store.db, m.id))?.roles).toEqual(['member']);
    expect((await findMemberByExternalId(store.db, ws.id, 'U1'))?.displayName).toBe('Ada');
  });

  it('writes bundles whole and unions those attached to a channel, its workspace and the org', async () => {
    const org = await createOrg(store.db, 'Acme');
    const ws1 = await createWorkspace(store.db, { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'one' });
    const ws2 = await createWorkspace(store.db, { orgId: org.id, kind: 'slack', externalId: 'T2', name: 'two' });
    const ch1 = await createChannel(store.db, { workspaceId: ws1.id, externalId: 'C1', name: 'eng' });
    const ch2 = await createChannel(store.db, { workspaceId: ws2.id, externalId: 'C2', name: 'ops' });

    const base = await putBundle(store.db, org.id, { name: 'base', domains: [{ host: 'registry.npmjs.org' }], connections: [] });
    const eng = await putBundle(store.db, org.id, {
      name: 'eng',
      domains: [{ host: 'internal.example.com', ports: [8443] }],
      connections: [{ name: 'github', secret: 'gh-token', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' }, narrow: { readOnly: true } }],
    });
    const ws1Only = await putBundle(store.db, org.id, { name: 'ws1', domains: [{ host: 'one.example.com' }], connections: [] });
    await attachBundle(store.db, base.id, { kind: 'org' });
    await attachBundle(store.db, eng.id, { kind: 'channel', id: ch1.id });
    await attachBundle(store.db, eng.id, { kind: 'channel', id: ch1.id }); // idempotent
    await attachBundle(store.db, ws1Only.id, { kind: 'workspace', id: ws1.id });

    const forCh1 = await bundlesAttachedTo(store.db, org.id, [{ kind: 'org' }, { kind: 'workspace', id: ws1.id }, { kind: 'channel', id: ch1.id }]);
    expect(forCh1.map((b) => b.name)).toEqual(['base', 'eng', 'ws1']);
    const forCh2 = await bundlesAttachedTo(store.db, org.id, [{ kind: 'org' }, { kind: 'workspace', id: ws2.id }, { kind: 'channel', id: ch2.id }]);
    expect(forCh2.map((b) => b.name)).toEqual(['base']);

    const loaded = await getBundleByName(store.db, org.id, 'eng');
    expect(loaded?.domains).toEqual([{ host: 'internal.example.com', ports: [8443] }]);
    expect(loaded?.connections[0]).toMatchObject({ name: 'github', secret: 'gh-token', narrow: { readOnly: true } });

    // Put replaces contents; scopes survive a put.
    await putBundle(store.db, org.id, { name: 'eng', domains: [], connections: [] });
    expect((await getBundleByName(store.db, org.id, 'eng'))?.connections).toEqual([]);
    expect(await scopesOf(store.db, eng.id)).toEqual([`channel:${ch1.id}`]);

    expect(await detachBundle(store.db, eng.id, { kind: 'channel', id: ch1.id })).toBe(true);
    expect(await deleteBundle(store.db, org.id, 'ws1')).toBe(true);
    expect((await listBundles(store.db, org.id)).map((b) => b.name)).toEqual(['base', 'eng']);
  });

  it('keeps personal connectors apart from bundles', async () => {
    const org = await createOrg(store.db, 'Acme');
    const ws = await createWorkspace(store.db, { orgId: org.id, kind: 'web', externalId: 'web', name: 'web' });
    const m = await createMember(store.db, { workspaceId: ws.id, externalId: 'U1', displayName: 'Ada' });
    await putPersonalConnector(store.db, org.id, m.id, { name: 'my-gh', secret: 'ada-gh', allowedWebsites: ['api.github.com'], inject: { basic: { username: 'x-access-token' } } });
    await putPersonalConnector(store.db, org.id, m.id, { name: 'my-gh', secret: 'ada-gh-2', allowedWebsites: ['api.github.com'], inject: { basic: { username: 'x-access-token' } } });
    const mine = await personalConnectors(store.db, m.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ secret: 'ada-gh-2', bundleId: null, ownerMemberId: m.id });
    expect(await listBundles(store.db, org.id)).toEqual([]);
  });
});
