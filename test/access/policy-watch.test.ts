import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bumpRevision } from '../../src/access/policy-revision.js';
import { watchPolicy } from '../../src/access/policy-watch.js';
import type { EgressPolicy } from '../../src/policy/compile.js';
import { decide } from '../../src/policy/decide.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from './fixtures.js';

const outcome = (p: EgressPolicy, host: string) => decide(p, { method: 'GET', scheme: 'https', host, port: 443, path: '/' }).outcome;

async function waitFor<T>(get: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(BACKENDS)('watchPolicy on %s', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
  });
  afterEach(async () => w.close());

  it('a DM watcher sees its member’s connector change; channel bundles never reach it', async () => {
    const seen: EgressPolicy[] = [];
    const watch = await watchPolicy(w.store, { kind: 'dm', memberId: w.ada.id }, (p) => seen.push(p));
    try {
      await w.admin.putBundle('t', w.org.id, { name: 'org', domains: [{ host: 'org.example.com' }], connections: [] });
      await w.admin.attach('t', w.org.id, 'org', { kind: 'org' });
      await w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, {
        name: 'gh', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'token {{secret}}' },
      });
      const latest = await waitFor(() => seen.find((p) => outcome(p, 'api.github.com') === 'credential'));
      expect(outcome(latest, 'org.example.com')).toBe('blocked');
    } finally {
      await watch.close();
    }
  });

  it('fails closed (deny-all) when the place’s policy can no longer be read', async () => {
    await w.admin.putBundle('t', w.org.id, { name: 'org', domains: [{ host: 'org.example.com' }], connections: [] });
    await w.admin.attach('t', w.org.id, 'org', { kind: 'org' });
    const seen: EgressPolicy[] = [];
    const errors: unknown[] = [];
    const watch = await watchPolicy(w.store, { kind: 'channel', channelId: w.eng.id }, (p) => seen.push(p), { onError: (e) => errors.push(e) });
    try {
      await w.store.db.deleteFrom('channels').where('id', '=', w.eng.id).execute();
      await bumpRevision(w.store.db, w.store.dialect, w.org.id);
      const last = await waitFor(() => (errors.length ? seen.at(-1) : undefined));
      expect(outcome(last, 'org.example.com')).toBe('blocked');
      expect(errors[0]).toMatchObject({ code: 'not_found' });
    } finally {
      await watch.close();
    }
  });

  it('watchers of one org share the poll and the LISTEN connection; closing one leaves the others working', async () => {
    const a: EgressPolicy[] = [];
    const b: EgressPolicy[] = [];
    const wa = await watchPolicy(w.store, { kind: 'channel', channelId: w.eng.id }, (p) => a.push(p));
    const wb = await watchPolicy(w.store, { kind: 'channel', channelId: w.sales.id }, (p) => b.push(p));
    try {
      await wa.close();
      await w.admin.putBundle('t', w.org.id, { name: 'org', domains: [{ host: 'org.example.com' }], connections: [] });
      await w.admin.attach('t', w.org.id, 'org', { kind: 'org' });
      const latest = await waitFor(() => b.find((p) => outcome(p, 'org.example.com') === 'allowlist'));
      expect(latest).toBeDefined();
      expect(a).toEqual([]);
    } finally {
      await wb.close();
    }
  });

  it('after close, no more callbacks', async () => {
    let calls = 0;
    const watch = await watchPolicy(w.store, { kind: 'channel', channelId: w.eng.id }, () => calls++);
    await watch.close();
    await w.admin.putBundle('t', w.org.id, { name: 'x', domains: [{ host: 'x.example.com' }], connections: [] });
    await new Promise((r) => setTimeout(r, 600));
    expect(calls).toBe(0);
  });
});
