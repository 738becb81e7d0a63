import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { exportNetworkEvents, startSiemExport } from '../../src/audit/siem-export.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

const at = (hhmm: string) => `2026-11-22T${hhmm}:00.000Z`;
const clock = (hhmm: string) => () => new Date(at(hhmm));

describe.each(BACKENDS)('SIEM export on %s', (backendName) => {
  let backend: TestBackend;
  let store: ControlStore;
  let log: AuditLog;
  let dir: string;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    store = await openControlStore(backend.location);
    log = new AuditLog(store);
    dir = join(backend.home, 'audit');
  });
  afterEach(async () => {
    await store.close();
    await backend.cleanup();
  });

  const egress = (hhmm: string, host: string) => log.append({ type: 'egress', outcome: 'allowlist', method: 'GET', scheme: 'https', host, port: 443, path: '/', ts: at(hhmm) });
  const lines = (name: string) =>
    readFileSync(join(dir, name), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; ts: string; type: string; host?: string });
  const files = () => readdirSync(dir).filter((n) => n.startsWith('network-')).sort();

  async function seedThreeHours() {
    await egress('10:05', 'a.example');
    await log.append({ type: 'admin-change', actor: 'ada', target: 'bundle:eng', ts: at('10:06') });
    await log.append({ type: 'credential-use', connection: 'github', host: 'api.github.com', ts: at('10:59') });
    await egress('11:00', 'b.example');
    await log.append({ type: 'session', session: 's1', ts: at('11:30') });
    await egress('11:59', 'c.example');
    await egress('12:10', 'd.example');
  }

  it('puts network events of each hour in that hour\'s file, closes past hours, 0600 in 0700', async () => {
    await seedThreeHours();
    const result = await exportNetworkEvents(store, dir, { now: clock('12:30') });
    expect(result).toEqual({ exported: 5, closed: ['2026-11-22T10', '2026-11-22T11'], ran: true });
    expect(files()).toEqual(['network-2026-11-22T10.jsonl', 'network-2026-11-22T11.jsonl', 'network-2026-11-22T12.jsonl.partial']);
    expect(lines('network-2026-11-22T10.jsonl').map((e) => [e.seq, e.type])).toEqual([[1, 'egress'], [3, 'credential-use']]);
    expect(lines('network-2026-11-22T11.jsonl').map((e) => e.host)).toEqual(['b.example', 'c.example']);
    expect(lines('network-2026-11-22T12.jsonl.partial').map((e) => e.host)).toEqual(['d.example']);
    for (const f of files()) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // Lines are the events as `audit export` prints them, hash included.
    expect(lines('network-2026-11-22T10.jsonl')[0]).toMatchObject({ hash: expect.stringMatching(/^[0-9a-f]{64}$/), method: 'GET', port: 443 });
  });

  it('a second pass adds nothing; later events are picked up once; a new exporter continues from the cursor', async () => {
    await seedThreeHours();
    await exportNetworkEvents(store, dir, { now: clock('12:30') });
    const before = readFileSync(join(dir, 'network-2026-11-22T12.jsonl.partial'), 'utf8');
    expect((await exportNetworkEvents(store, dir, { now: clock('12:31') })).exported).toBe(0);
    expect(readFileSync(join(dir, 'network-2026-11-22T12.jsonl.partial'), 'utf8')).toBe(before);

    await egress('12:40', 'e.example');
    await log.append({ type: 'sandbox', ts: at('12:41') });
    await egress('12:50', 'f.example');
    // Each call is a fresh pass with no memory but the directory: a restart.
    expect((await exportNetworkEvents(store, dir, { now: clock('12:55') })).exported).toBe(2);
    expect((await exportNetworkEvents(store, dir, { now: clock('12:56') })).exported).toBe(0);
    expect(lines('network-2026-11-22T12.jsonl.partial').map((e) => e.host)).toEqual(['d.example', 'e.example', 'f.example']);

    // The hour closes once it is over (and the grace period has passed).
    expect((await exportNetworkEvents(store, dir, { now: clock('13:01') })).closed).toEqual([]);
    expect((await exportNetworkEvents(store, dir, { now: clock('13:03') })).closed).toEqual(['2026-11-22T12']);
    expect(files()).toEqual(['network-2026-11-22T10.jsonl', 'network-2026-11-22T11.jsonl', 'network-2026-11-22T12.jsonl']);
  });

  it('never rewrites a closed hour: a late event goes to the current hour\'s file with its own ts', async () => {
    await seedThreeHours();
    await exportNetworkEvents(store, dir, { now: clock('12:30') });
    const closed = readFileSync(join(dir, 'network-2026-11-22T11.jsonl'), 'utf8');
    await egress('11:58', 'late.example');
    await exportNetworkEvents(store, dir, { now: clock('12:35') });
    expect(readFileSync(join(dir, 'network-2026-11-22T11.jsonl'), 'utf8')).toBe(closed);
    expect(lines('network-2026-11-22T12.jsonl.partial').map((e) => [e.host, e.ts])).toEqual([
      ['d.example', at('12:10')],
      ['late.example', at('11:58')],
    ]);
  });

  it('after a crash between a file append and the cursor write, neither duplicates nor skips; a torn line is cut', async () => {
    await egress('12:01', 'a.example');
    await egress('12:02', 'b.example');
    await exportNetworkEvents(store, dir, { now: clock('12:30') });
    // Simulate: the cursor never moved past the first event, and a torn partial line.
    writeFileSync(join(dir, 'network.cursor.json'), JSON.stringify({ seq: 1, closedThrough: '' }));
    appendFileSync(join(dir, 'network-2026-11-22T12.jsonl.partial'), '{"seq":3,"ty');
    await egress('12:03', 'c.example');
    expect((await exportNetworkEvents(store, dir, { now: clock('12:31') })).exported).toBe(1);
    expect(lines('network-2026-11-22T12.jsonl.partial').map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('a crash between recording an hour closed and renaming its file is finished on the next pass', async () => {
    await egress('10:01', 'a.example');
    await exportNetworkEvents(store, dir, { now: clock('10:30') });
    const cursor = JSON.parse(readFileSync(join(dir, 'network.cursor.json'), 'utf8')) as { seq: number };
    writeFileSync(join(dir, 'network.cursor.json'), JSON.stringify({ seq: cursor.seq, closedThrough: '2026-11-22T10' }));
    await exportNetworkEvents(store, dir, { now: clock('10:31') });
    expect(files()).toEqual(['network-2026-11-22T10.jsonl']);
  });

  it('runs periodically for tagbox up, and stops', async () => {
    const exporter = startSiemExport(store, dir, { intervalMs: 50 });
    await log.append({ type: 'egress', outcome: 'blocked', host: 'x.example' });
    const deadline = Date.now() + 5000;
    let found: string[] = [];
    while (Date.now() < deadline) {
      found = existsSync(dir) ? files() : [];
      if (found.length === 1 && readFileSync(join(dir, found[0]!), 'utf8').includes('x.example')) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await exporter.stop();
    expect(found).toHaveLength(1);
    expect(lines(found[0]!).map((e) => e.host)).toEqual(['x.example']);
  });

  it('tagbox audit siem-export writes to TAGBOX_HOME/audit or --dir', async () => {
    await log.append({ type: 'egress', outcome: 'blocked', host: 'x.example' });
    await log.append({ type: 'admin-change', actor: 'ada' });
    const first = await runTagbox(['audit', 'siem-export'], { env: backend.env });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('exported 1 events');
    expect(files()).toHaveLength(1);
    const again = await runTagbox(['audit', 'siem-export'], { env: backend.env });
    expect(again.stdout).toContain('exported 0 events');

    const other = join(backend.home, 'elsewhere');
    const custom = await runTagbox(['audit', 'siem-export', '--dir', other], { env: backend.env });
    expect(custom.code).toBe(0);
    expect(readdirSync(other).filter((n) => n.startsWith('network-'))).toHaveLength(1);
  });
});
