import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { AuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/log.js';
import { startHousekeeping } from '../../src/server/housekeeping.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

describe.each(BACKENDS)('tagbox up housekeeping on %s', (backendName) => {
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

  it('prunes by the org retention days, keeps the chain verifiable, and writes SIEM files', async () => {
    const audit = new AuditLog(store);
    // An event from three months ago heads the chain (pruning takes the oldest, in chain order).
    await audit.append({ type: 'egress', ts: new Date(Date.now() - 90 * 86_400_000).toISOString(), outcome: 'blocked', host: 'old.test' });
    const access = new AccessAdmin(store, audit);
    const org = await access.ensureDefaultOrg();
    await access.updateOrgSettings('test', org.id, { retentionDays: 30 });
    await audit.append({ type: 'egress', outcome: 'allowlist', host: 'new.test' });

    const housekeeping = startHousekeeping({ store, access, orgId: org.id, home: backend.home, logger: createLogger({ level: 'silent' }), siemIntervalMs: 50, firstPruneMs: 10 });
    const dir = join(backend.home, 'audit');
    for (let i = 0; i < 100; i++) {
      const hosts: string[] = [];
      for await (const e of audit.query({ type: 'egress' })) hosts.push(String(e.host));
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('network-')) : [];
      if (hosts.length === 1 && files.some((f) => readFileSync(join(dir, f), 'utf8').includes('new.test'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await housekeeping.stop();

    const hosts: string[] = [];
    for await (const e of audit.query({ type: 'egress' })) hosts.push(String(e.host));
    expect(hosts).toEqual(['new.test']);
    expect((await audit.verify()).ok).toBe(true);
    const text = readdirSync(dir).filter((f) => f.startsWith('network-')).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
    expect(text).toContain('new.test');
  });
});
