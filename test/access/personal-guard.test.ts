import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { effectiveBundles, effectivePolicy, type Place } from '../../src/access/effective-policy.js';
import type { BundleSpec } from '../../src/access/model.js';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { decide } from '../../src/policy/decide.js';
import { isForbiddenAddress } from '../../src/policy/ssrf.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/store/tables.js';
import { newId, nowIso } from '../../src/util/ids.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from './fixtures.js';

const inject = { header: 'Authorization', value: 'Bearer {{secret}}' };

/** A connection row written straight into the database, past every entry point's checks. */
async function insertConnection(
  db: Kysely<Database>,
  row: { orgId: string; bundleId?: string; ownerMemberId?: string; name: string; secret: string; allowedWebsites: unknown[]; narrow?: unknown },
): Promise<void> {
  await db
    .insertInto('connections')
    .values({
      id: newId(),
      org_id: row.orgId,
      bundle_id: row.bundleId ?? null,
      owner_member_id: row.ownerMemberId ?? null,
      name: row.name,
      secret_name: row.secret,
      allowed_websites: JSON.stringify(row.allowedWebsites),
      inject: JSON.stringify(inject),
      narrow: row.narrow ? JSON.stringify(row.narrow) : null,
      created_at: nowIso(),
      updated_at: nowIso(),
    })
    .execute();
}

const at = async (w: World, place: Place, host: string) => {
  const policy = await effectivePolicy(w.store.db, place);
  return decide(policy, { method: 'GET', scheme: 'https', host, port: 443, path: '/' });
};

describe.each(BACKENDS)('personal secrets never leave their DM, on %s', (backendName) => {
  let w: World;
  let bobSecret: string;
  beforeEach(async () => {
    w = await createWorld(backendName);
    await w.admin.putPersonalConnector(w.bob.id, w.org.id, w.bob.id, { name: 'gh', allowedWebsites: ['api.github.com'], inject });
    bobSecret = personalSecretName(w.bob.id, 'gh');
  });
  afterEach(async () => w.close());

  it('AccessAdmin.putBundle and applyBundles refuse a personal secret, naming the field; nothing is stored', async () => {
    const r0 = await w.admin.policyRevision(w.org.id);
    const steal: BundleSpec = { name: 'steal', domains: [], connections: [{ name: 'x', secret: bobSecret, allowedWebsites: ['evil.example'], inject }] };
    await expect(w.admin.putBundle('mallory', w.org.id, steal)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/connections\[0\]\.secret: .*personal\. namespace/),
    });
    await expect(w.admin.applyBundles('mallory', w.org.id, [{ name: 'ok', domains: [{ host: 'ok.example.com' }], connections: [] }, steal])).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('bundles[1] "steal"'),
    });
    // The whole namespace, whether or not a member has such a secret yet.
    await expect(w.admin.putBundle('mallory', w.org.id, { ...steal, connections: [{ ...steal.connections[0]!, secret: 'personal.0000000000000000.future' }] })).rejects.toMatchObject({ exitCode: 2 });
    expect(await w.admin.listBundles(w.org.id)).toEqual([]);
    expect(await w.admin.policyRevision(w.org.id)).toBe(r0);
  });

  it('a personal connector cannot name any other secret: an org secret or another member’s', async () => {
    for (const secret of ['gh-token', bobSecret, personalSecretName(w.ada.id, 'other')]) {
      await expect(
        w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, { name: 'gh', secret, allowedWebsites: ['evil.example'], inject }),
      ).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('secret') });
    }
    expect(await w.admin.listPersonalConnectors(w.ada.id)).toEqual([]);
    // Its own derived name is fine, given or not.
    await w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, { name: 'gh', secret: personalSecretName(w.ada.id, 'gh'), allowedWebsites: ['api.github.com'], inject });
    expect((await w.admin.listPersonalConnectors(w.ada.id)).map((c) => c.secret)).toEqual([personalSecretName(w.ada.id, 'gh')]);
  });

  it('the proxy’s policy drops a channel connection that references a personal secret, whatever the database holds', async () => {
    await w.admin.putBundle('admin', w.org.id, { name: 'eng', domains: [], connections: [{ name: 'ok', secret: 'org-token', allowedWebsites: ['ok.example.com'], inject }] });
    await w.admin.attach('admin', w.org.id, 'eng', { kind: 'channel', id: w.eng.id });
    const bundle = (await w.admin.getBundle(w.org.id, 'eng'))!;
    await insertConnection(w.store.db, { orgId: w.org.id, bundleId: bundle.id, name: 'steal', secret: bobSecret, allowedWebsites: ['evil.example'] });

    const place: Place = { kind: 'channel', channelId: w.eng.id };
    const bundles = await effectiveBundles(w.store.db, place);
    expect(bundles.flatMap((b) => b.connections.map((c) => c.secret))).toEqual(['org-token']);
    const policy = await effectivePolicy(w.store.db, place);
    const steal = decide(policy, { method: 'GET', scheme: 'https', host: 'evil.example', port: 443, path: '/' });
    expect(steal.outcome).not.toBe('credential');
    expect(JSON.stringify(steal)).not.toContain(bobSecret);
    // The rest of the bundle still works, and Bob's DM keeps his credential.
    expect((await at(w, place, 'ok.example.com')).outcome).toBe('credential');
    expect((await at(w, { kind: 'dm', memberId: w.bob.id }, 'api.github.com')).outcome).toBe('credential');
  });

  it('a DM’s policy uses only that member’s own personal secret names, whatever the database holds', async () => {
    const dm: Place = { kind: 'dm', memberId: w.ada.id };
    // Rows owned by Ada that point at Bob's secret, at an org secret, or at a misnamed personal one.
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'bobs', secret: bobSecret, allowedWebsites: ['bobs.example'] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'orgs', secret: 'gh-token', allowedWebsites: ['orgs.example'] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'swap', secret: personalSecretName(w.ada.id, 'other'), allowedWebsites: ['swap.example'] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'own', secret: personalSecretName(w.ada.id, 'own'), allowedWebsites: ['own.example'] });
    const bundles = await effectiveBundles(w.store.db, dm);
    expect(bundles.flatMap((b) => b.connections.map((c) => [c.name, c.secret]))).toEqual([['own', personalSecretName(w.ada.id, 'own')]]);
    for (const host of ['bobs.example', 'orgs.example', 'swap.example']) expect((await at(w, dm, host)).outcome).toBe('blocked');
    expect((await at(w, dm, 'own.example')).outcome).toBe('credential');
  });
});

describe.each(BACKENDS)('a DM unlocks no forbidden address, on %s', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
  });
  afterEach(async () => w.close());

  const forbidden = ['127.0.0.1', '::1', '169.254.169.254', '10.0.0.1', '192.168.1.10', '100.64.0.1', 'fd00:ec2::254', '0.0.0.0'];

  it('AccessAdmin.putPersonalConnector refuses non-public IP literals and any CIDR, naming the field', async () => {
    const entries: unknown[] = [...forbidden.filter((a) => a !== '0.0.0.0'), { host: '127.0.0.1', ports: [8080] }, '0.0.0.0/0', '10.0.0.0/8', '::/0', '8.8.8.0/24', '[::ffff:127.0.0.1]'];
    for (const entry of entries) {
      await expect(
        w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, { name: 'x', allowedWebsites: ['api.github.com', entry as string], inject }),
      ).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('allowedWebsites[1]') });
    }
    expect(await w.admin.listPersonalConnectors(w.ada.id)).toEqual([]);
    // A public IP literal is a host like any other.
    await w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, { name: 'x', allowedWebsites: ['93.184.216.34'], inject });
    expect(await w.admin.listPersonalConnectors(w.ada.id)).toHaveLength(1);
  });

  it('the compiled DM policy’s unlock list is empty even for rows written straight into the database', async () => {
    const own = (name: string) => personalSecretName(w.ada.id, name);
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'loop', secret: own('loop'), allowedWebsites: ['127.0.0.1', { host: '127.0.0.1', ports: [8080] }] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'meta', secret: own('meta'), allowedWebsites: ['169.254.169.254'] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'all', secret: own('all'), allowedWebsites: ['0.0.0.0/0', '::/0'] });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'lan', secret: own('lan'), allowedWebsites: ['lan.example.com', '10.0.0.0/8'], narrow: { host: 'lan.example.com' } });
    await insertConnection(w.store.db, { orgId: w.org.id, ownerMemberId: w.ada.id, name: 'pub', secret: own('pub'), allowedWebsites: ['93.184.216.34'] });
    const dm: Place = { kind: 'dm', memberId: w.ada.id };
    const policy = await effectivePolicy(w.store.db, dm);
    expect(policy.addresses.size).toBe(0);
    for (const address of forbidden) {
      expect([address, isForbiddenAddress(address, { allowed: policy.addresses, selfAddresses: [] })]).toEqual([address, expect.any(String)]);
    }
    // A public IP literal stays reachable, but never unlocks the proxy's own address.
    expect((await at(w, dm, '93.184.216.34')).outcome).toBe('credential');
    expect(isForbiddenAddress('93.184.216.34', { allowed: policy.addresses, selfAddresses: ['93.184.216.34'] })).toMatch(/own address/);
    // The connections that named forbidden addresses are dropped whole.
    expect((await effectiveBundles(w.store.db, dm)).flatMap((b) => b.connections.map((c) => c.name))).toEqual(['pub']);
    for (const host of ['127.0.0.1', '169.254.169.254', 'lan.example.com']) expect((await at(w, dm, host)).outcome).toBe('blocked');
  });

  it('an admin, in an org bundle, may still unlock an exact forbidden address for a channel', async () => {
    await w.admin.putBundle('admin', w.org.id, { name: 'local', domains: [{ host: '127.0.0.1', ports: [8080] }], connections: [] });
    await w.admin.attach('admin', w.org.id, 'local', { kind: 'channel', id: w.eng.id });
    const policy = await effectivePolicy(w.store.db, { kind: 'channel', channelId: w.eng.id });
    expect(isForbiddenAddress('127.0.0.1', { allowed: policy.addresses, selfAddresses: [] })).toBeNull();
  });
});
