import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditCheckpointOptions, enableAuditCheckpoints, type AuditCheckpoints } from '../../src/audit/checkpoints.js';
import { readCheckpointFile } from '../../src/audit/checkpoint-file.js';
import { AuditLog } from '../../src/audit/log.js';
import { loadSigningKey } from '../../src/audit/signing-key.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { attackerKey, checkpointRows, eventRows, forgeCheckpoint, insertCheckpoint, rewriteAndRecompute } from './attacker.js';

/**
 * The attacks of the attack run, and the ones around them: each is
 * done as the attacker would (direct SQL on the database, no signing key),
 * and `tagbox audit verify` (the built CLI) must exit 1 naming the problem.
 */
describe.each(BACKENDS)('attacks on the audit log on %s', (backendName) => {
  let backend: TestBackend;
  /** The attacker's connection: plain SQL, no checkpoints, no key. */
  let db: ControlStore;
  const writers: ControlStore[] = [];

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    db = await openControlStore(backend.location);
  });
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close();
    await db.close();
    await backend.cleanup();
  });

  const checkpointFile = () => join(backend.home, 'audit', 'checkpoint.json');

  /** A writer as the CLI and the server open one: checkpoints on, this home's key and file. */
  async function writer(): Promise<{ store: ControlStore; log: AuditLog; checkpoints: AuditCheckpoints }> {
    const store = await openControlStore(backend.location);
    writers.push(store);
    const checkpoints = enableAuditCheckpoints(store, auditCheckpointOptions(backend.home));
    return { store, log: new AuditLog(store), checkpoints };
  }

  /** Egress events one a day from 2026-01-(from+1), by a writer that then closes (covering its tail). */
  async function seed(n: number, from = 0): Promise<void> {
    const w = await writer();
    for (let i = from; i < from + n; i++) {
      await w.log.append({
        type: 'egress',
        outcome: i % 2 ? 'allowlist' : 'blocked',
        actor: 'ada',
        session: `s${i}`,
        channel: 'C1',
        ts: `2026-01-${String(i + 1).padStart(2, '0')}T12:00:00.000Z`,
        method: 'GET',
        scheme: 'https',
        host: `h${i}.example`,
        port: 443,
        path: '/',
      });
    }
    writers.splice(writers.indexOf(w.store), 1);
    await w.store.close();
  }

  const verify = (args: string[] = []) => runTagbox(['audit', 'verify', ...args], { env: backend.env });
  async function expectBroken(pattern: RegExp, args: string[] = []) {
    const result = await verify(args);
    expect(result.stderr).toMatch(pattern);
    expect(result.code).toBe(1);
    return result;
  }
  const exec = (query: ReturnType<typeof sql>) => query.execute(db.db);
  const hashAt = async (seq: number) => (await eventRows(db.db)).find((r) => r.seq === seq)!.hash;

  it('an untampered log verifies: chain, columns, checkpoints and the external checkpoint', async () => {
    await seed(5);
    await seed(5, 5);
    const ok = await verify();
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('audit chain intact: 10 events');
    expect(ok.stdout).toContain('every event is covered by a signed checkpoint');
    expect(ok.stdout).toMatch(/external checkpoint .*checkpoint\.json: event 10, matches/);

    // An auditor with the public key alone, and the JSON form.
    const pem = await runTagbox(['audit', 'public-key'], { env: backend.env });
    const pub = join(backend.home, 'auditor.pem');
    writeFileSync(pub, pem.stdout);
    const json = await verify(['--public-key', pub, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, events: 10, head: 10, uncovered: 0, external: { state: 'matches', seq: 10 } });
  });

  it('(a) deleting the last events: the checkpoint that covered them says so, and no writer signs over it', async () => {
    await seed(10);
    await exec(sql`delete from audit_events where seq > 7`);
    await expectBroken(/audit log truncated: a signed checkpoint covers event 10 but the log ends at event 7: events were deleted from the tail/);

    // The log keeps serving: a writer still appends, but will not sign the shortened chain.
    const w = await writer();
    const before = await checkpointRows(db.db);
    await w.log.append({ type: 'egress', outcome: 'blocked', host: 'after.example' });
    expect(await w.checkpoints.checkpoint()).toMatchObject({ state: 'refused', problem: expect.stringMatching(/beyond the last event/) });
    expect((await eventRows(db.db)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await checkpointRows(db.db)).toEqual(before);
    await expectBroken(/audit log truncated/);
  });

  it('(a) deleting the last events and the checkpoints that covered them: the external checkpoint says so', async () => {
    await seed(5);
    await seed(5, 5);
    await exec(sql`delete from audit_events where seq > 7`);
    await exec(sql`delete from audit_checkpoints where seq > 7`);
    await expectBroken(/audit log truncated: the external checkpoint .*checkpoint\.json covers event 10 but the log ends at event 7/);

    // Everything gone: still caught.
    await exec(sql`delete from audit_events`);
    await exec(sql`delete from audit_checkpoints`);
    await expectBroken(/audit log truncated: the external checkpoint .* covers event 10 but the log ends at event 0/);
  });

  it('(b) changing a column the hash did not cover (type) is named, event and column', async () => {
    await seed(5);
    await exec(sql`update audit_events set type = 'admin-change' where seq = 3`);
    await expectBroken(/audit chain broken at event 3 \(admin-change, 2026-01-03T12:00:00.000Z\): column type \("admin-change"\) does not match the hashed event \("egress"\)/);
  });

  it('(b) every other stored column is covered too', async () => {
    await seed(3);
    const trusted = loadSigningKey({ file: join(backend.home, 'audit-signing.key'), create: false }).key.trusted();
    const forged: Array<[string, ReturnType<typeof sql>, ReturnType<typeof sql>]> = [
      ['ts', sql`update audit_events set ts = '2020-01-01T00:00:00.000Z' where seq = 2`, sql`update audit_events set ts = '2026-01-02T12:00:00.000Z' where seq = 2`],
      ['outcome', sql`update audit_events set outcome = 'credential' where seq = 2`, sql`update audit_events set outcome = 'allowlist' where seq = 2`],
      ['actor', sql`update audit_events set actor = 'mallory' where seq = 2`, sql`update audit_events set actor = 'ada' where seq = 2`],
      ['session_id', sql`update audit_events set session_id = null where seq = 2`, sql`update audit_events set session_id = 's1' where seq = 2`],
      ['channel_id', sql`update audit_events set channel_id = 'C2' where seq = 2`, sql`update audit_events set channel_id = 'C1' where seq = 2`],
    ];
    for (const [column, tamper, restore] of forged) {
      await exec(tamper);
      const result = await verifyAuditLog(db, { trusted, checkpointFile: checkpointFile() });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.broken).toMatchObject({ seq: 2, kind: 'event', problem: expect.stringContaining(`column ${column} `) });
      await exec(restore);
      expect((await verifyAuditLog(db, { trusted, checkpointFile: checkpointFile() })).ok).toBe(true);
    }
  });

  it('(c) an event rewritten and the chain recomputed with plain SHA-256 no longer matches its checkpoint; no writer launders it', async () => {
    await seed(5);
    await seed(5, 5);
    await rewriteAndRecompute(db.db, 3, (e) => (e.host = 'innocent.example'));
    const broken = await expectBroken(/audit chain broken at event (\d+) \(egress, .*\): the chain does not match the signed checkpoint at this event: events after (the start|event \d+) were rewritten and the chain recomputed/);
    expect(Number(/at event (\d+)/.exec(broken.stderr)![1])).toBeGreaterThanOrEqual(3);

    const w = await writer();
    const before = await checkpointRows(db.db);
    await w.log.append({ type: 'egress', outcome: 'blocked', host: 'after.example' });
    expect(await w.checkpoints.checkpoint()).toMatchObject({ state: 'refused', problem: expect.stringMatching(/no longer matches|rewritten/) });
    expect(await checkpointRows(db.db)).toEqual(before);
    expect((await eventRows(db.db)).length).toBe(11);
    await expectBroken(/does not match the signed checkpoint/);
  });

  it('(c) ... with the real checkpoints replaced by one signed with the attacker\'s own key', async () => {
    await seed(10);
    await rewriteAndRecompute(db.db, 3, (e) => (e.outcome = 'allowlist'));
    await exec(sql`delete from audit_checkpoints`);
    const mallory = attackerKey();
    await insertCheckpoint(db.db, forgeCheckpoint(mallory.privateKey, mallory.keyId, { seq: 10, hash: await hashAt(10) }));
    // Caught by the signature alone, without the external file.
    await expectBroken(new RegExp(`broken at event 10 .*the checkpoint at this event is signed by key ${mallory.keyId}, which is not the audit signing key`), ['--no-checkpoint-file']);

    // Claiming the real key's id does not help.
    const realId = loadSigningKey({ file: join(backend.home, 'audit-signing.key'), create: false }).key.keyId;
    await exec(sql`delete from audit_checkpoints`);
    await insertCheckpoint(db.db, forgeCheckpoint(mallory.privateKey, realId, { seq: 10, hash: await hashAt(10) }));
    await expectBroken(/broken at event 10 .*the checkpoint at this event has a signature that does not verify/, ['--no-checkpoint-file']);
    // And the external file disagrees with the recomputed chain.
    await exec(sql`delete from audit_checkpoints`);
    await expectBroken(/checkpoint rows were deleted|does not match the external checkpoint/);
  });

  it('deleting checkpoint rows is caught by the external checkpoint', async () => {
    await seed(5);
    await seed(5, 5);
    await exec(sql`delete from audit_checkpoints where seq = 10`);
    await expectBroken(/the external checkpoint .* covers event 10 but the newest checkpoint in the database is at event \d+: checkpoint rows were deleted/);
    await exec(sql`delete from audit_checkpoints`);
    await expectBroken(/covers event 10 but the newest checkpoint in the database is at event none: checkpoint rows were deleted/);
    // Without the external file this cannot be told from a log no key ever signed: verify says how much is unsigned.
    const blind = await verify(['--no-checkpoint-file']);
    expect(blind.code).toBe(0);
    expect(blind.stdout).toContain('10 events after the newest checkpoint are not covered');
  });

  it('moving the anchor by hand is caught, after a real prune and without one', async () => {
    for (let i = 0; i < 10; i++) await seed(1, i);
    const pruned = await runTagbox(['audit', 'prune', '--before', '2026-01-05T00:00:00Z'], { env: backend.env });
    expect(pruned.stdout).toContain('pruned 4 events');
    expect((await verify()).code).toBe(0);
    const anchorCheckpoints = (await checkpointRows(db.db)).filter((c) => c.kind === 'anchor');
    expect(anchorCheckpoints.map((c) => c.seq)).toEqual([4]);

    // Hide two more events by deleting them and moving the anchor after them.
    const hash6 = await hashAt(6);
    await exec(sql`delete from audit_events where seq <= 6`);
    await exec(sql`update audit_anchor set seq = 6, hash = ${hash6}`);
    await expectBroken(/audit chain broken at event 6: the retention anchor \(the chain starts after event 6\) is not covered by a signed anchor checkpoint: it was moved or set by hand/);
    // Dragging the anchor's checkpoint along breaks its signature.
    await exec(sql`update audit_checkpoints set seq = 6, hash = ${hash6} where kind = 'anchor'`);
    await expectBroken(/audit chain broken at event 6: the anchor checkpoint has a signature that does not verify/);
    // Prune will not build on it either.
    const refused = await runTagbox(['audit', 'prune', '--before', '2026-01-09T00:00:00Z'], { env: backend.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/prune refused: the retention anchor \(event 6\) was moved by hand/);
  });

  it('setting an anchor by hand on a log that was never pruned is caught', async () => {
    await seed(6);
    const hash2 = await hashAt(2);
    await exec(sql`delete from audit_events where seq <= 2`);
    await sql`insert into audit_anchor (id, seq, hash) values (1, 2, ${hash2})`.execute(db.db);
    await expectBroken(/the retention anchor \(the chain starts after event 2\) is not covered by a signed anchor checkpoint/);
  });

  it('(d) back-dating the ts column does not make prune delete recent events: prune verifies and refuses', async () => {
    for (let i = 0; i < 10; i++) await seed(1, i);
    await exec(sql`update audit_events set ts = '2025-06-01T00:00:00.000Z' where seq between 5 and 8`);
    const prune = await runTagbox(['audit', 'prune', '--before', '2026-01-05T00:00:00Z'], { env: backend.env });
    expect(prune.code).toBe(1);
    expect(prune.stderr).toMatch(/audit prune refused: event 5 in the part to prune does not verify \(column ts/);
    expect((await eventRows(db.db)).length).toBe(10);
    expect(await db.db.selectFrom('audit_anchor').selectAll().execute()).toEqual([]);
    await expectBroken(/broken at event 5 \(egress, 2025-06-01T00:00:00.000Z\): column ts/);
  });

  it('(d) back-dating the hashed ts and recomputing the chain does not make prune delete them either', async () => {
    for (let i = 0; i < 10; i++) await seed(1, i);
    for (const seq of [5, 6, 7, 8]) await rewriteAndRecompute(db.db, seq, (e) => (e.ts = '2025-06-01T00:00:00.000Z'));
    const prune = await runTagbox(['audit', 'prune', '--before', '2026-01-05T00:00:00Z'], { env: backend.env });
    expect(prune.code).toBe(1);
    expect(prune.stderr).toMatch(/audit prune refused: event 10 no longer matches its signed checkpoint: the chain was rewritten/);
    expect((await eventRows(db.db)).length).toBe(10);
  });

  it('the external checkpoint replaced with an older one: what can and cannot be told', async () => {
    await seed(5);
    const old = join(backend.home, 'old-checkpoint.json');
    copyFileSync(checkpointFile(), old);
    // The writer that goes on stays open: it remembers the newest checkpoint it signed.
    const w = await writer();
    for (let i = 5; i < 10; i++) await w.log.append({ type: 'egress', outcome: 'allowlist', host: `h${i}.example` });
    // Signed now (or a moment ago, by the writer's own schedule).
    await w.checkpoints.checkpoint();
    expect(readCheckpointFile(checkpointFile())).toMatchObject({ state: 'present', checkpoint: { seq: 10 } });
    const offHost = join(backend.home, 'siem-copy.json');
    copyFileSync(checkpointFile(), offHost);

    // Rolled back alone, the file is merely older than the database: indistinguishable from lag, not tampering.
    copyFileSync(old, checkpointFile());
    const older = await verify();
    expect(older.code).toBe(0);
    expect(older.stdout).toMatch(/event 5, matches, older than the newest in the database/);

    // Rolled back together with a truncated tail (events and checkpoints after 5 deleted): the local file
    // cannot tell; a copy kept off the host (the SIEM's) can, and so can a writer that saw the newer one.
    await exec(sql`delete from audit_events where seq > 5`);
    await exec(sql`delete from audit_checkpoints where seq > 5`);
    expect((await verify()).code).toBe(0);
    await expectBroken(/audit log truncated: the external checkpoint .*siem-copy\.json covers event 10 but the log ends at event 5/, ['--checkpoint-file', offHost]);
    await w.log.append({ type: 'egress', outcome: 'allowlist', host: 'later.example' });
    expect(await w.checkpoints.checkpoint()).toMatchObject({ state: 'refused', problem: expect.stringMatching(/newest checkpoint known here \(event 10\) is missing from the database/) });
    expect((await checkpointRows(db.db)).every((c) => c.seq <= 5)).toBe(true);
  });

  it('a forged, garbled or deleted external checkpoint is caught', async () => {
    await seed(4);
    const mallory = attackerKey();
    writeFileSync(checkpointFile(), JSON.stringify(forgeCheckpoint(mallory.privateKey, mallory.keyId, { seq: 4, hash: await hashAt(4) })));
    await expectBroken(new RegExp(`audit checkpoint mismatch: the external checkpoint .* is signed by key ${mallory.keyId}, which is not the audit signing key`));
    writeFileSync(checkpointFile(), '{"kind":"head","seq":4');
    await expectBroken(/audit checkpoint mismatch: the external checkpoint .* is unusable: not valid JSON/);
    rmSync(checkpointFile());
    await expectBroken(/audit checkpoint mismatch: the external checkpoint .* is missing while the database holds \d+ checkpoints?/);
  });

  it('an untampered log verifies across pruning, restarts and an auditor\'s public key', async () => {
    for (let i = 0; i < 10; i++) await seed(1, i);
    const first = await runTagbox(['audit', 'prune', '--before', '2026-01-05T00:00:00Z'], { env: backend.env });
    expect(first.code).toBe(0);
    expect((await verify()).code).toBe(0);
    await seed(3, 10);
    const second = await runTagbox(['audit', 'prune', '--older-than', '1'], { env: backend.env });
    // 5-10 go; the record of the first prune (stamped now) stays, and so does all after it.
    expect(second.stdout).toContain('pruned 6 events');
    const ok = await verify();
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('every event is covered by a signed checkpoint');
    const pub = join(backend.home, 'auditor.pem');
    writeFileSync(pub, (await runTagbox(['audit', 'public-key'], { env: backend.env })).stdout);
    expect((await verify(['--public-key', pub])).code).toBe(0);
    expect(readFileSync(checkpointFile(), 'utf8')).toContain('"kind":"head"');
  });
});
