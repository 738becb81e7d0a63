import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { runTagbox } from '../helpers/cli.js';

/**
 * How `tagbox exec` starts (docs/SANDBOX.md, "Start-up of tagbox exec"): the
 * proxy socket is bound at once, but without bundles or upstream flags the
 * proxy — and the vault, whose files it creates on a fresh home — starts only
 * when the sandbox connects; the sandbox's audit events come from a worker
 * thread. Whichever way it started, the same default deny, audit and exit codes.
 */
describe('tagbox exec start-up', () => {
  let dir: string;
  let ca: TestCa;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tagbox-exec-startup-'));
    ca = await createTestCa();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let homes = 0;
  const freshHome = () => join(dir, `home-${++homes}`);
  const exec = (home: string, args: string[]) => runTagbox(['exec', ...args], { env: { TAGBOX_HOME: home } });
  const events = async (home: string) => {
    const exported = await runTagbox(['audit', 'export'], { env: { TAGBOX_HOME: home } });
    expect(exported.code).toBe(0);
    return exported.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  it('a command that makes no request never starts the proxy, and its sandbox is still audited', async () => {
    const home = freshHome();
    const r = await exec(home, ['--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect([r.code, r.stdout, r.stderr]).toEqual([7, 'out\n', 'err\n']);
    expect(existsSync(join(home, 'vault'))).toBe(false);
    const sandbox = (await events(home)).filter((e) => e.type === 'sandbox');
    expect(sandbox).toMatchObject([
      { action: 'create', actor: 'cli', command: 'sh', bundles: [] },
      { action: 'release', exitCode: 7 },
    ]);
    expect(sandbox[0]!.session).toBe(sandbox[1]!.session);
    expect((await runTagbox(['audit', 'verify'], { env: { TAGBOX_HOME: home } })).code).toBe(0);
  });

  it('a request from the sandbox starts the proxy, which denies it by default and audits it under the session', async () => {
    const home = freshHome();
    const r = await exec(home, ['--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_connect}" https://example.test/; echo " $?"; curl -s -o /dev/null -w "%{http_code}" http://plain.test/x; echo " $?"']);
    expect(r.stdout).toBe('403 56\n403 0\n');
    expect(r.code).toBe(0);
    expect(existsSync(join(home, 'vault'))).toBe(true);
    const all = await events(home);
    const session = all.find((e) => e.type === 'sandbox' && e.action === 'create')!.session;
    expect(String(session)).toMatch(/^exec-/);
    const egress = all.filter((e) => e.type === 'egress');
    expect(egress).toEqual(expect.arrayContaining([
      expect.objectContaining({ host: 'example.test', method: 'CONNECT', outcome: 'blocked', session }),
      expect.objectContaining({ host: 'plain.test', outcome: 'blocked', session }),
    ]));
    expect(all.some((e) => e.type === 'sandbox' && e.action === 'release' && e.session === session && e.exitCode === 0)).toBe(true);
    expect((await runTagbox(['audit', 'verify'], { env: { TAGBOX_HOME: home } })).code).toBe(0);
  });

  it('with upstream flags the proxy starts before the command, and a bad flag stops it from running', async () => {
    const home = freshHome();
    const r = await exec(home, ['--upstream-ca', ca.certFile, '--', 'true']);
    expect(r.code).toBe(0);
    expect(existsSync(join(home, 'vault'))).toBe(true);
    const missing = await exec(home, ['--upstream-ca', join(dir, 'missing.pem'), '--', 'sh', '-c', 'echo ran']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('missing.pem');
  });

  it('passes the status of a command killed by a signal through, as a shell reports it', async () => {
    const home = freshHome();
    expect((await exec(home, ['--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
    expect((await exec(home, ['--', 'sh', '-c', 'kill -KILL $$'])).code).toBe(137);
  });

  it('a bad config file stops it before the command runs (exit 2); the audit log holds only the sandbox that ran', async () => {
    const home = freshHome();
    const first = await exec(home, ['--', 'true']);
    expect(first.code).toBe(0);
    writeFileSync(join(home, 'tagbox.yaml'), 'log: [\n');
    const r = await exec(home, ['--', 'sh', '-c', 'echo ran']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('tagbox.yaml');
    rmSync(join(home, 'tagbox.yaml'));
    expect((await events(home)).filter((e) => e.type === 'sandbox').map((e) => e.action)).toEqual(['create', 'release']);
  });
});
