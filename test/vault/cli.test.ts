import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { cliMasterKey, openWith } from './cli-helpers.js';

describe.each(BACKENDS)('tagbox secret / vault on %s', (backendName) => {
  let backend: TestBackend;
  const tagbox = (args: string[], input?: string | Buffer, env: Record<string, string> = {}) => runTagbox(args, { env: { ...backend.env, ...env }, input });

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
  });
  afterEach(async () => {
    await backend.cleanup();
  });

  it('set, rotate, list, rm: exit 0, names and versions only', async () => {
    const set = await tagbox(['secret', 'set', 'gh-token'], 'first\n');
    expect(set).toMatchObject({ code: 0, stdout: 'created secret gh-token: kind static, version 1\n' });
    expect(set.stderr).toMatch(/created a new vault master key in .*master\.key \(mode 0600\)/);
    const file = join(backend.home, 'value.txt');
    writeFileSync(file, 'second\n');
    expect(await tagbox(['secret', 'set', 'gh-token', '--from-file', file, '--json'])).toMatchObject({ code: 0, stdout: '{"name":"gh-token","kind":"static","version":2}\n' });

    const list = await tagbox(['secret', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+KIND\s+VERSION\s+CREATED\s+UPDATED\s+LAST USED\ngh-token\s+static\s+2\s+\S+\s+\S+\s+never\n$/);
    const json = JSON.parse((await tagbox(['secret', 'list', '--json'])).stdout) as unknown[];
    expect(json).toEqual([expect.objectContaining({ name: 'gh-token', kind: 'static', version: 2 })]);

    // Exactly one trailing newline is dropped, from stdin and from a file.
    expect(await openWith(backend, cliMasterKey(backend), 'gh-token')).toBe('second');

    expect(await tagbox(['secret', 'rm', 'gh-token'])).toMatchObject({ code: 0, stdout: 'removed secret gh-token\n' });
    expect((await tagbox(['secret', 'list'])).stdout).toBe('no secrets\n');
    const audit = (await tagbox(['audit', 'export', '--type', 'admin-change'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string });
    expect(audit.map((e) => e.action)).toEqual(['secret.create', 'secret.rotate', 'secret.remove']);
  });

  const HUGE_FILE = '$HUGE';
  it.each<[string[], string | Buffer, RegExp]>([
    [['secret', 'set', 'Bad_Name'], 'v', /invalid secret name "Bad_Name": expected 1-63 characters/],
    [['secret', 'set', '-leading'], 'v', /./],
    [['secret', 'set', 'a'.repeat(64)], 'v', /invalid secret name/],
    [['secret', 'set', 'empty'], '', /the secret value is empty/],
    [['secret', 'set', 'empty'], '\n', /the secret value is empty/],
    [['secret', 'set', 'big'], Buffer.alloc(64 * 1024 + 1, 0x61), /the secret value is 65537 bytes; the limit is 65536 bytes \(64 KiB\)/],
    [['secret', 'set', 'huge', '--from-file', HUGE_FILE], '', /larger than 65536 bytes/],
    [['secret', 'set', 'two-lines'], 'a\nb\n', /line break/],
    [['secret', 'set', 'x', '--from-file', '/nonexistent/file'], '', /--from-file \/nonexistent\/file: cannot read it \(ENOENT\)/],
    [['secret', 'set', 'x', '--kind', 'bogus'], 'v', /argument 'bogus' is invalid/],
    [['secret', 'set', 'x', '--kind', 'aws-sigv4'], '{"accessKeyId":"a"}', /the aws-sigv4 document is invalid: secretAccessKey: .*region: .*service: /],
    [['secret', 'rm', 'Nope!'], '', /invalid secret name/],
  ])('exits 2 with a clear message: %j', async (args, input, message) => {
    const huge = join(backend.home, 'huge');
    writeFileSync(huge, Buffer.alloc(1024 * 1024, 0x61));
    const result = await tagbox(args.map((a) => (a === HUGE_FILE ? huge : a)), input);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('exactly 64 KiB is accepted; removing a missing secret exits 1', async () => {
    expect((await tagbox(['secret', 'set', 'max'], Buffer.alloc(64 * 1024, 0x61))).code).toBe(0);
    expect(await tagbox(['secret', 'rm', 'missing'])).toMatchObject({ code: 1, stderr: 'tagbox: secret "missing" not found\n' });
  });

  it('TAGBOX_MASTER_KEY: used instead of a file; a malformed one exits 2; a wrong one fails closed', async () => {
    const bad = await tagbox(['secret', 'set', 'a'], 'v', { TAGBOX_MASTER_KEY: 'too-short' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('tagbox: TAGBOX_MASTER_KEY: expected a master key as the base64 encoding of exactly 32 random bytes (for example the output of `openssl rand -base64 32`)\n');

    const key = randomBytes(32).toString('base64');
    expect((await tagbox(['secret', 'set', 'a'], 'v', { TAGBOX_MASTER_KEY: key })).code).toBe(0);
    expect(existsSync(join(backend.home, 'vault', 'master.key'))).toBe(false);
    expect(existsSync(join(backend.home, 'master.key'))).toBe(false);

    const wrong = await tagbox(['vault', 'rotate-master', '--new-key-file', join(backend.home, 'x')], '', { TAGBOX_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/x: cannot read it|cannot read the master key file/);
    const next = join(backend.home, 'next.key');
    writeFileSync(next, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const wrong2 = await tagbox(['vault', 'rotate-master', '--new-key-file', next], '', { TAGBOX_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(wrong2).toMatchObject({ code: 1, stderr: 'tagbox: the master key from TAGBOX_MASTER_KEY does not open this vault: it is the wrong key, or the wrapped private key was altered\n' });

    expect((await tagbox(['vault', 'rotate-master'], '', { TAGBOX_MASTER_KEY: key })).code).toBe(2);
    const rotated = await tagbox(['vault', 'rotate-master', '--new-key-file', next], '', { TAGBOX_MASTER_KEY: key });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/re-wrapped the vault private key under the master key in .*next\.key/);
    expect(await openWith(backend, cliMasterKey(backend, next), 'a')).toBe('v');
    expect((await tagbox(['vault', 'rotate-master', '--new-key-file', next], '', { TAGBOX_MASTER_KEY: key })).code).toBe(1);
  });

  it('vault rotate-master with the key file: new key in place, old one gone, secrets still open', async () => {
    expect((await tagbox(['vault', 'init'])).code).toBe(0);
    expect((await tagbox(['vault', 'init'])).stdout).toMatch(/already has a key pair/);
    expect((await tagbox(['secret', 'set', 'db-password'], 'pw')).code).toBe(0);
    const before = cliMasterKey(backend);
    const rotated = await tagbox(['vault', 'rotate-master']);
    expect(rotated).toMatchObject({ code: 0 });
    expect(rotated.stdout).toMatch(/rotated the master key: the new key is in .*master\.key/);
    const after = cliMasterKey(backend);
    expect(after.sameAs(before)).toBe(false);
    expect(existsSync(join(backend.home, 'master.key.old'))).toBe(false);
    expect(existsSync(join(backend.home, 'master.key.new'))).toBe(false);
    expect(await openWith(backend, after, 'db-password')).toBe('pw');
    await expect(openWith(backend, before, 'db-password')).rejects.toThrow(/does not open this vault/);
  });

  it('help lists the verbs, and no verb or flag prints a value', async () => {
    const help = await tagbox(['--help']);
    expect(help.stdout).toMatch(/secret/);
    expect(help.stdout).toMatch(/vault/);
    const secretHelp = (await tagbox(['secret', '--help'])).stdout;
    expect(secretHelp).toMatch(/set/);
    expect(secretHelp).not.toMatch(/\b(get|show|reveal|cat)\b/);
  });
});
