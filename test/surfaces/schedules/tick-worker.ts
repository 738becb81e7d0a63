/**
 * Another scheduler process for the exactly-once tests: opens its own
 * connection to the store named in argv[2], and ticks at each ISO time read
 * from stdin, answering one JSON line per tick with the dedupe keys it fired.
 * (Two SQLite connections in one process would serialise on the event loop,
 * which better-sqlite3 blocks while it waits for the lock; real replicas are
 * separate processes anyway.)
 */
import { createInterface } from 'node:readline';
import { AuditLog } from '../../../src/audit/log.js';
import { openControlStore } from '../../../src/store/database.js';
import { Scheduler } from '../../../src/surfaces/schedules/scheduler.js';
import { RecordingPort, silentLogger } from './helpers.js';

const store = await openControlStore(JSON.parse(process.argv[2]!), { migrate: false });
const port = new RecordingPort();
const scheduler = new Scheduler({ store, audit: new AuditLog(store), port, logger: silentLogger, graceSeconds: 600, instanceId: process.argv[3]! });
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const before = port.calls.length;
  await scheduler.tick(new Date(line));
  process.stdout.write(`${JSON.stringify({ at: line, keys: port.calls.slice(before).map((c) => c.dedupeKey) })}\n`);
}
await store.close();
