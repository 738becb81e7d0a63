import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { auditCheckpointOptions, enableAuditCheckpoints } from '../../src/audit/checkpoints.js';
import { readCheckpointFile } from '../../src/audit/checkpoint-file.js';
import { AuditLog } from '../../src/audit/log.js';
import { startHousekeeping } from '../../src/server/housekeeping.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { checkpointRows } from './attacker.js';

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** Runs a script in its own Node process (tsx), with this backend's location and home. */
function child(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.on('close', (code) => resolve({ code, stdout }));
  });
}

describe.each(BACKENDS)('audit checkpoints on %s', (backendName) => {
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

  const childEnv = () => ({ LOC: JSON.stringify(backend.location), HOME_DIR: backend.home });

  it('a writer signs its appends at most once per interval, and its tail when it closes', async () => {
    const writer = await openControlStore(backend.location);
    const checkpoints = enableAuditCheckpoints(writer, { ...auditCheckpointOptions(backend.home), minIntervalMs: 3_600_000 });
    const log = new AuditLog(writer);
    for (let i = 0; i < 50; i++) await log.append({ type: 'egress', outcome: 'allowlist', host: `h${i}.example` });
    // Within the hour: the first checkpoint, and nothing more yet.
    await new Promise((r) => setTimeout(r, 50));
    expect((await checkpointRows(store.db)).length).toBeLessThanOrEqual(1);
    await writer.close();

    const rows = await checkpointRows(store.db);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(rows.at(-1)).toMatchObject({ kind: 'head', seq: 50 });
    const file = readCheckpointFile(checkpoints.checkpointFile);
    expect(file).toMatchObject({ state: 'present', checkpoint: { seq: 50, signature: rows.at(-1)!.signature } });
    // A signed statement, not a secret: readable by every writer (the server's and the proxy's group).
    expect(statSync(checkpoints.checkpointFile).mode & 0o777).toBe(0o640);
    expect(statSync(checkpoints.keyFile).mode & 0o777).toBe(0o600);
    expect(await new AuditLog(store).verify({ trusted: checkpoints.trustedKeys()!, checkpointFile: checkpoints.checkpointFile })).toMatchObject({ ok: true, events: 50, uncovered: 0 });
  });

  it('concurrent first runs agree on one signing key', async () => {
    const script = `
      import { loadSigningKey } from './src/audit/signing-key.ts';
      process.stdout.write(loadSigningKey({ file: process.env.HOME_DIR + '/audit-signing.key', create: true }).key.keyId);
    `;
    const runs = await Promise.all([1, 2, 3, 4].map(() => child(script, childEnv())));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
    expect(readdirSync(backend.home).filter((f) => f.startsWith('audit-signing'))).toEqual(['audit-signing.key']);
  });

  it('several writer processes at once, then after a restart, leave one chain, all of it signed', async () => {
    const script = `
      import { auditCheckpointOptions, enableAuditCheckpoints } from './src/audit/checkpoints.ts';
      import { AuditLog } from './src/audit/log.ts';
      import { openControlStore } from './src/store/database.ts';
      const store = await openControlStore(JSON.parse(process.env.LOC));
      enableAuditCheckpoints(store, { ...auditCheckpointOptions(process.env.HOME_DIR), minIntervalMs: 5 });
      const log = new AuditLog(store);
      for (let i = 0; i < 40; i++) await log.append({ type: 'egress', outcome: 'allowlist', host: process.env.WHO + i });
      await store.close();
    `;
    const both = await Promise.all(['a', 'b'].map((who) => child(script, { ...childEnv(), WHO: who })));
    expect(both.map((r) => r.code)).toEqual([0, 0]);
    expect((await child(script, { ...childEnv(), WHO: 'c' })).code).toBe(0);

    const verify = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('audit chain intact: 120 events');
    expect(verify.stdout).toContain('every event is covered by a signed checkpoint');
    expect(verify.stdout).toMatch(/event 120, matches/);
    // At least one from the pair (a writer whose tail the other already signed adds none) and one after the restart.
    expect((await checkpointRows(store.db)).length).toBeGreaterThanOrEqual(2);
  });

  it('a writer that cannot read the key still appends and says so once; verify counts what is unsigned; a key holder covers it', async () => {
    // The key "file" sits under a regular file: it can be neither read nor created.
    const blocker = join(backend.home, 'not-a-dir');
    writeFileSync(blocker, '');
    const { logger, lines } = capturingLogger();
    const writer = await openControlStore(backend.location);
    enableAuditCheckpoints(writer, { ...auditCheckpointOptions(backend.home), keyFile: join(blocker, 'audit-signing.key'), logger, minIntervalMs: 0 });
    const log = new AuditLog(writer);
    for (let i = 0; i < 5; i++) {
      await log.append({ type: 'egress', outcome: 'blocked', host: `h${i}.example` });
      await new Promise((r) => setTimeout(r, 5));
    }
    await writer.close();
    expect((await checkpointRows(store.db)).length).toBe(0);
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/audit checkpoints are off in this process: .*not-a-dir.*still appended and hash-chained/);

    const uncovered = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(uncovered.code).toBe(0);
    expect(uncovered.stdout).toContain('5 events after the newest checkpoint are not covered by a signed checkpoint yet');

    const signed = await runTagbox(['audit', 'checkpoint'], { env: backend.env });
    expect(signed.code).toBe(0);
    expect(JSON.parse(signed.stdout)).toMatchObject({ kind: 'head', seq: 5 });
    const covered = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(covered.code).toBe(0);
    expect(covered.stdout).toContain('every event is covered by a signed checkpoint');
  });

  it('the server\'s housekeeping checkpoints events that other writers left unsigned', async () => {
    const audit = new AuditLog(store);
    for (let i = 0; i < 3; i++) await audit.append({ type: 'egress', outcome: 'allowlist', host: `h${i}.example` });
    const access = new AccessAdmin(store, audit);
    const org = await access.ensureDefaultOrg();
    const housekeeping = startHousekeeping({ store, access, orgId: org.id, home: backend.home, logger: pino({ level: 'silent' }), checkpointEveryMs: 20, siemIntervalMs: 60_000, firstPruneMs: 3_600_000 });
    try {
      for (let i = 0; i < 200 && !(await checkpointRows(store.db)).some((c) => c.seq >= 3); i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await housekeeping.stop();
    }
    expect((await audit.verify()).ok).toBe(true);
    expect(await audit.verify()).toMatchObject({ uncovered: 0 });
  });

  it('a key from TAGBOX_AUDIT_SIGNING_KEY signs; verify trusts only keys it is given, never one from the database', async () => {
    const seed = Buffer.alloc(32, 7).toString('base64');
    const env = { ...backend.env, TAGBOX_AUDIT_SIGNING_KEY: seed };
    await new AuditLog(store).append({ type: 'egress', outcome: 'blocked', host: 'x.example' });
    const signed = await runTagbox(['audit', 'checkpoint'], { env });
    expect(signed.code).toBe(0);
    const keyId = (JSON.parse(signed.stdout) as { keyId: string }).keyId;
    expect((await runTagbox(['audit', 'verify'], { env })).code).toBe(0);

    // Without the key (no env, no key file) the signatures cannot be checked: that fails, it does not pass.
    const blind = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(blind.code).toBe(1);
    expect(blind.stderr).toMatch(/audit checkpoints cannot be checked at event 1 .*no audit public key/);

    // An auditor holding some other key is told the checkpoints are not signed by it.
    const other = await runTagbox(['audit', 'public-key'], { env: backend.env });
    const pub = join(backend.home, 'other.pem');
    writeFileSync(pub, other.stdout);
    const wrong = await runTagbox(['audit', 'verify', '--public-key', pub], { env: backend.env });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`is signed by key ${keyId}, which is not the audit signing key`);
    // The env key's public half verifies.
    const envPub = join(backend.home, 'env.pem');
    writeFileSync(envPub, (await runTagbox(['audit', 'public-key'], { env })).stdout);
    expect((await runTagbox(['audit', 'verify', '--public-key', envPub], { env: backend.env })).code).toBe(0);
  });

  it('bad keys are bad input, named', async () => {
    const badEnv = await runTagbox(['audit', 'checkpoint'], { env: { ...backend.env, TAGBOX_AUDIT_SIGNING_KEY: 'not-a-key' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/TAGBOX_AUDIT_SIGNING_KEY: expected the base64 encoding of a 32-byte Ed25519 private seed/);
    expect(badEnv.stderr).not.toContain('not-a-key');

    writeFileSync(join(backend.home, 'audit-signing.key'), 'garbage\n', { mode: 0o600 });
    const badFile = await runTagbox(['audit', 'public-key'], { env: backend.env });
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toMatch(/audit-signing\.key: expected an Ed25519 private key in PEM/);

    const badPub = join(backend.home, 'bad.pem');
    writeFileSync(badPub, 'nope');
    const verify = await runTagbox(['audit', 'verify', '--public-key', badPub], { env: backend.env });
    expect(verify.code).toBe(2);
    expect(verify.stderr).toMatch(/--public-key .*bad\.pem: expected an Ed25519 public key in PEM/);
  });
});
