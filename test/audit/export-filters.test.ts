import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

describe.each(BACKENDS)('tagbox audit export filters on %s', (backendName) => {
  let backend: TestBackend;

  beforeAll(async () => {
    backend = await createTestBackend(backendName);
    const store = await openControlStore(backend.location);
    const log = new AuditLog(store);
    await log.append({ type: 'invocation', actor: 'ada', channel: 'C1', session: 's1', ts: '2026-01-01T10:00:00.000Z' });
    await log.append({ type: 'egress', outcome: 'allowlist', session: 's1', channel: 'C1', host: 'a.example', ts: '2026-01-01T11:00:00.000Z' });
    await log.append({ type: 'invocation', actor: 'bob', channel: 'C2', session: 's2', ts: '2026-01-02T10:00:00.000Z' });
    await log.append({ type: 'egress', outcome: 'blocked', session: 's2', channel: 'C2', host: 'b.example', ts: '2026-01-02T11:00:00.000Z' });
    await store.close();
  });
  afterAll(async () => {
    await backend.cleanup();
  });

  async function exported(args: string[]) {
    const result = await runTagbox(['audit', 'export', ...args], { env: backend.env });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq);
  }

  it('filters by time range, actor, session and channel, alone and combined', async () => {
    expect(await exported([])).toEqual([1, 2, 3, 4]);
    expect(await exported(['--until', '2026-01-02T00:00:00Z'])).toEqual([1, 2]);
    expect(await exported(['--since', '2026-01-01T10:30:00Z', '--until', '2026-01-02T10:30:00Z'])).toEqual([2, 3]);
    expect(await exported(['--actor', 'bob'])).toEqual([3]);
    expect(await exported(['--session', 's1'])).toEqual([1, 2]);
    expect(await exported(['--channel', 'C2', '--type', 'egress'])).toEqual([4]);
    expect(await exported(['--channel', 'C3'])).toEqual([]);
  });

  it('rejects bad times and bad types with exit 2, naming the flag', async () => {
    const badUntil = await runTagbox(['audit', 'export', '--until', 'tomorrow'], { env: backend.env });
    expect(badUntil.code).toBe(2);
    expect(badUntil.stderr).toContain('--until');
    const reversed = await runTagbox(['audit', 'export', '--since', '2026-02-01T00:00:00Z', '--until', '2026-01-01T00:00:00Z'], { env: backend.env });
    expect(reversed.code).toBe(2);
    expect(reversed.stderr).toContain('--until');
    expect((await runTagbox(['audit', 'export', '--type', 'nonsense'], { env: backend.env })).code).toBe(2);
  });
});
