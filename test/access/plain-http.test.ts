import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { effectivePolicy } from '../../src/access/effective-policy.js';
import type { BundleSpec } from '../../src/access/model.js';
import { specOf } from '../../src/access/spec.js';
import { decide } from '../../src/policy/decide.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from './fixtures.js';

/**
 * A connection's opt-in to send its credential over plain HTTP (`plainHttp`)
 * survives the database: stored, exported, compiled into the proxy's policy.
 * Without it, the credential goes over TLS only and a plain-HTTP request is
 * blocked; members cannot opt in for their personal connectors.
 */
const bundle = (plainHttp: boolean | undefined): BundleSpec => ({
  name: 'local',
  domains: [],
  connections: [
    {
      name: 'svc',
      secret: 'svc-token',
      allowedWebsites: ['svc.internal'],
      inject: { header: 'Authorization', value: 'Bearer {{secret}}' },
      ...(plainHttp !== undefined ? { plainHttp } : {}),
    },
  ],
});

describe.each(BACKENDS)('plainHttp through the store (%s)', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
  });
  afterEach(async () => w.close());

  const outcome = async (scheme: 'http' | 'https') => {
    const policy = await effectivePolicy(w.store.db, { kind: 'channel', channelId: w.eng.id });
    return decide(policy, { method: 'GET', scheme, host: 'svc.internal', port: scheme === 'https' ? 443 : 80, path: '/x' });
  };

  it('is kept, exported, and lets the credential go over plain HTTP', async () => {
    await w.admin.putBundle('t', w.org.id, bundle(true));
    await w.admin.attach('t', w.org.id, 'local', { kind: 'channel', id: w.eng.id });
    const stored = (await w.admin.getBundle(w.org.id, 'local'))!;
    expect(specOf(stored).connections[0]).toMatchObject({ plainHttp: true });
    expect((await outcome('http')).outcome).toBe('credential');
    expect((await outcome('https')).outcome).toBe('credential');
  });

  it('is off unless asked for: plain HTTP is then blocked, naming the host and https', async () => {
    await w.admin.putBundle('t', w.org.id, bundle(undefined));
    await w.admin.attach('t', w.org.id, 'local', { kind: 'channel', id: w.eng.id });
    expect(specOf((await w.admin.getBundle(w.org.id, 'local'))!).connections[0]).not.toHaveProperty('plainHttp');
    const plain = await outcome('http');
    expect(plain.outcome).toBe('blocked');
    expect(plain.reason).toMatch(/svc\.internal/);
    expect(plain.reason).toMatch(/https/);
    // Turning it off again is a change of that field.
    await w.admin.putBundle('t', w.org.id, bundle(true));
    await w.admin.putBundle('t', w.org.id, bundle(false));
    expect((await outcome('http')).outcome).toBe('blocked');
  });

  it('cannot be asked for by a member for a personal connector', async () => {
    await expect(
      w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, {
        name: 'ada-svc', allowedWebsites: ['svc.example.com'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' }, plainHttp: true,
      } as never),
    ).rejects.toThrow(/plainHttp/);
  });
});
