import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { effectivePolicy } from '../../src/access/effective-policy.js';
import type { Channel, Org } from '../../src/access/model.js';
import { readRevision } from '../../src/access/policy-revision.js';
import { watchPolicy, type PolicyWatch } from '../../src/access/policy-watch.js';
import { BACKENDS } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { startHarness, type Harness } from '../proxy/harness.js';

/**
 * The requirement itself: a change made through AccessAdmin — in this process
 * or in another one (`tagbox bundle apply` against the same store) — is in
 * force in a RUNNING proxy listener within 2 seconds.
 */
const BOUND_MS = 2000;

describe.each(BACKENDS)('policy change propagation on %s', (backendName) => {
  let h: Harness;
  let admin: AccessAdmin;
  let org: Org;
  let channel: Channel;
  let watch: PolicyWatch;

  beforeEach(async () => {
    h = await startHarness({ backend: backendName, bundles: 'bundles: []' });
    admin = new AccessAdmin(h.store, h.audit);
    org = await admin.ensureDefaultOrg();
    const ws = await admin.createWorkspace('t', { orgId: org.id, kind: 'web', externalId: 'W', name: 'web' });
    channel = await admin.createChannel('t', { workspaceId: ws.id, externalId: 'C', name: 'eng' });
    await admin.putBundle('t', org.id, { name: 'eng', domains: [{ host: 'other.echo.test' }], connections: [] });
    await admin.attach('t', org.id, 'eng', { kind: 'channel', id: channel.id });
    const place = { kind: 'channel' as const, channelId: channel.id };
    h.listener.setPolicy(await effectivePolicy(h.store.db, place));
    // On Postgres the safety-net poll is pushed out of the way: NOTIFY alone must carry the change.
    watch = await watchPolicy(h.store, place, (policy) => h.listener.setPolicy(policy), { pollMs: backendName === 'postgres' ? 60_000 : 250 });
  });
  afterEach(async () => {
    await watch.close();
    await h.close();
  });

  // A blocked HTTPS request is refused at CONNECT (403 there, no response after it).
  const status = async (url: string) => {
    const r = await h.curl(url);
    return r.status || r.connectStatus;
  };

  /** Polls until the request gets `want`; returns ms since `since`. Generous loop budget, the bound is asserted by the caller. */
  async function until(url: string, want: number, since: number): Promise<number> {
    for (;;) {
      if ((await status(url)) === want) return Date.now() - since;
      if (Date.now() - since > 10_000) return Number.POSITIVE_INFINITY;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('a bundle edited in this process reaches the running listener within 2 s', async () => {
    expect(await status('https://echo.test/x')).toBe(403);
    const t0 = Date.now();
    await admin.putBundle('t', org.id, { name: 'eng', domains: [{ host: 'other.echo.test' }, { host: 'echo.test' }], connections: [] });
    const elapsed = await until('https://echo.test/x', 200, t0);
    console.log(`[${backendName}] in-process edit in force after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(BOUND_MS);
  });

  it('a detach reaches the running listener within 2 s', async () => {
    expect(await status('https://other.echo.test/x')).toBe(200);
    const t0 = Date.now();
    await admin.detach('t', org.id, 'eng', { kind: 'channel', id: channel.id });
    const elapsed = await until('https://other.echo.test/x', 403, t0);
    console.log(`[${backendName}] in-process detach in force after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(BOUND_MS);
  });

  it('`tagbox bundle apply` in another process reaches the running listener within 2 s of its commit', async () => {
    const file = join(h.dir, 'bundles.yaml');
    writeFileSync(file, 'bundles:\n  - name: eng\n    domains: [other.echo.test, echo.test]\n');
    expect(await status('https://echo.test/x')).toBe(403);
    const before = await readRevision(h.store.db, org.id);
    const started = Date.now();
    const cli = runTagbox(['bundle', 'apply', file], { env: h.backend.env });
    // The clock starts when the other process's change is committed (its revision is visible).
    let committedAt = 0;
    while (!committedAt && Date.now() - started < 30_000) {
      if ((await readRevision(h.store.db, org.id)) !== before) committedAt = Date.now();
      else await new Promise((r) => setTimeout(r, 5));
    }
    expect(committedAt).toBeGreaterThan(0);
    const elapsed = await until('https://echo.test/x', 200, committedAt);
    const result = await cli;
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('~ bundle eng (domains)');
    console.log(`[${backendName}] cross-process apply in force ${elapsed} ms after commit (${Date.now() - started} ms including CLI start-up)`);
    expect(elapsed).toBeLessThan(BOUND_MS);
  });
});
