import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { effectivePolicy } from '../../src/access/effective-policy.js';
import type { Member, Org } from '../../src/access/model.js';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { newId, nowIso } from '../../src/util/ids.js';
import { BACKENDS } from '../helpers/backends.js';
import { startHarness, type Harness } from '../proxy/harness.js';

/**
 * The attack end to end, through a running Agent Proxy: a personal connector
 * row that lists the loopback upstream (written straight into the database,
 * since every entry point now refuses it) must not let the member's DM reach
 * it, while an admin's exact entry in a channel bundle still does.
 */
describe.each(BACKENDS)('a DM cannot reach a forbidden address through the proxy (%s)', (backendName) => {
  let h: Harness;
  let admin: AccessAdmin;
  let org: Org;
  let ada: Member;
  let channelId: string;

  beforeEach(async () => {
    h = await startHarness({ backend: backendName, bundles: 'bundles: []' });
    admin = new AccessAdmin(h.store, h.audit);
    org = await admin.ensureDefaultOrg();
    const ws = await admin.createWorkspace('t', { orgId: org.id, kind: 'web', externalId: 'W', name: 'web' });
    channelId = (await admin.createChannel('t', { workspaceId: ws.id, externalId: 'C', name: 'eng' })).id;
    ada = await admin.createMember('t', { workspaceId: ws.id, externalId: 'U', displayName: 'Ada', hasAccount: true });
    // Ada's legitimate connector, with its secret in the vault.
    await admin.putPersonalConnector(ada.id, org.id, ada.id, { name: 'echo', allowedWebsites: ['echo.test'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } });
    await h.vault!.sealer.put(personalSecretName(ada.id, 'echo'), Buffer.from('ada-own-value'));
  });
  afterEach(async () => h.close());

  it('the loopback upstream stays unreachable from the DM, whatever row is stored; the DM keeps serving', async () => {
    const loopback = `https://127.0.0.1:${h.echo.httpsPort}/internal`;
    await h.store.db
      .insertInto('connections')
      .values({
        id: newId(),
        org_id: org.id,
        bundle_id: null,
        owner_member_id: ada.id,
        name: 'loop',
        secret_name: personalSecretName(ada.id, 'loop'),
        allowed_websites: JSON.stringify([{ host: '127.0.0.1', ports: [h.echo.httpsPort] }, '0.0.0.0/0']),
        inject: JSON.stringify({ header: 'X-Loop', value: '{{secret}}' }),
        narrow: null,
        created_at: nowIso(),
        updated_at: nowIso(),
      })
      .execute();
    h.listener.setPolicy(await effectivePolicy(h.store.db, { kind: 'dm', memberId: ada.id }));

    const seen = h.echo.received.length;
    const attack = await h.curl(loopback);
    expect(attack.status || attack.connectStatus).toBe(403);
    expect(h.receivedSince(seen)).toEqual([]);

    // The member's own connector still works, with the member's own credential.
    const ok = await h.curl('https://echo.test/mine');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).headers.authorization).toBe('Bearer ada-own-value');

    // Control: the same address is reachable when an admin lists it exactly in a channel's bundle.
    await admin.putBundle('admin', org.id, { name: 'local', domains: [{ host: '127.0.0.1', ports: [h.echo.httpsPort] }], connections: [] });
    await admin.attach('admin', org.id, 'local', { kind: 'channel', id: channelId });
    h.listener.setPolicy(await effectivePolicy(h.store.db, { kind: 'channel', channelId }));
    expect((await h.curl(loopback)).status).toBe(200);
  });
});
