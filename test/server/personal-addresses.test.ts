import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectivePolicy } from '../../src/access/effective-policy.js';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { decide } from '../../src/policy/decide.js';
import { isForbiddenAddress } from '../../src/policy/ssrf.js';
import { Sealer } from '../../src/vault/sealer.js';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * Attack: a member's personal connector lists loopback, metadata, private
 * addresses or everything (0.0.0.0/0) in allowedWebsites, and their DM's
 * policy then unlocks those addresses in the SSRF guard. Only admins, in org
 * bundles, may unlock a forbidden address.
 */
describe.each(BACKENDS)('members unlock no forbidden address (%s)', (backend) => {
  let h: ApiHarness;
  let bob: { token: string; memberId: string };
  const body = (allowedWebsites: unknown[]) => ({ allowedWebsites, inject: { header: 'Authorization', value: 'Bearer {{secret}}' }, secretValue: 'bob-value' });

  beforeAll(async () => {
    h = await startApi(backend);
    bob = await h.tokenFor('member', 'bob');
  });
  afterAll(async () => h?.close());

  it('a personal connector naming a non-public IP or any address block is 400, naming the field, and nothing is stored or sealed', async () => {
    const port = 18080;
    const attacks: unknown[] = [
      { host: '127.0.0.1', ports: [port] },
      '127.0.0.1',
      '[::1]',
      '169.254.169.254',
      'fd00:ec2::254',
      '10.1.2.3',
      '192.168.0.1',
      '100.64.0.1',
      '[::ffff:10.0.0.1]',
      '0.0.0.0/0',
      '::/0',
      '10.0.0.0/8',
      '127.0.0.0/8',
      '8.8.8.0/24',
    ];
    const sealer = await Sealer.connect(h.vault);
    for (const entry of attacks) {
      const res = await h.api(bob.token, 'PUT', '/api/v1/me/connectors/lan', body(['api.github.com', entry]));
      expect([entry, res.status]).toEqual([entry, 400]);
      expect(res.body.error.message).toContain('body.allowedWebsites[1]');
    }
    const narrowed = await h.api(bob.token, 'PUT', '/api/v1/me/connectors/lan', { ...body(['169.254.169.254']), narrow: { host: '169.254.169.254' } });
    expect(narrowed.status).toBe(400);
    expect((await h.api(bob.token, 'GET', '/api/v1/me/connectors')).body).toEqual([]);
    expect(await sealer.metadata(personalSecretName(bob.memberId, 'lan'))).toBeUndefined();
  });

  it('host names and public IP literals are fine, and the DM’s compiled policy unlocks no address at all', async () => {
    const res = await h.api(bob.token, 'PUT', '/api/v1/me/connectors/pub', body(['api.github.com', '93.184.216.34', { host: '2606:2800:220:1:248:1893:25c8:1946', ports: [8443] }]));
    expect(res.status).toBe(200);
    const policy = await effectivePolicy(h.store.db, { kind: 'dm', memberId: bob.memberId });
    expect(policy.addresses.size).toBe(0);
    expect(decide(policy, { method: 'GET', scheme: 'https', host: '93.184.216.34', port: 443, path: '/' }).outcome).toBe('credential');
    for (const address of ['127.0.0.1', '169.254.169.254', '10.1.2.3', '::1']) {
      expect(isForbiddenAddress(address, { allowed: policy.addresses, selfAddresses: [] })).toEqual(expect.any(String));
    }
  });

  it('a refused connector never seals or rotates a secret', async () => {
    const sealer = await Sealer.connect(h.vault);
    const pub = personalSecretName(bob.memberId, 'pub');
    const version = (await sealer.metadata(pub))!.version;
    // Ambiguous with "pub" (same host, same specificity): refused before its secret is written.
    const dup = await h.api(bob.token, 'PUT', '/api/v1/me/connectors/dup', body(['api.github.com']));
    expect(dup.status).toBe(400);
    expect(await sealer.metadata(personalSecretName(bob.memberId, 'dup'))).toBeUndefined();
    // A refused update of "pub" leaves its secret at the same version.
    expect((await h.api(bob.token, 'PUT', '/api/v1/me/connectors/pub', { ...body(['127.0.0.1']), secretValue: 'rotated' })).status).toBe(400);
    expect((await sealer.metadata(pub))!.version).toBe(version);
  });

  it('an admin may still unlock an exact forbidden address in an org bundle', async () => {
    const admin = await h.tokenFor('admin', 'alice');
    const put = await h.api(admin.token, 'PUT', '/api/v1/bundles/local', { domains: [{ host: '127.0.0.1', ports: [18080] }, '10.0.0.0/8'] });
    expect(put.status).toBe(200);
  });
});
