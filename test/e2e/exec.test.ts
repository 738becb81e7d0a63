import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { ECHO_BUNDLES_YAML } from '../fixtures/echo-bundles.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { runTagbox } from '../helpers/cli.js';

/**
 * `tagbox exec` as CONTRACT.md states it, end to end: a real bubblewrap
 * sandbox, the real proxy, the real vault, a real HTTPS upstream on loopback.
 */
describe('tagbox exec', () => {
  let ca: TestCa;
  let echo: EchoUpstream;
  let dir: string;
  let home: string;
  let bundles: string;
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  let mapping: string[];

  beforeAll(async () => {
    ca = await createTestCa();
    echo = await startEchoUpstream({ ca });
    dir = mkdtempSync(join(tmpdir(), 'tagbox-exec-'));
    home = join(dir, 'home');
    bundles = join(dir, 'bundles.yaml');
    writeFileSync(bundles, ECHO_BUNDLES_YAML);
    mapping = [
      '--connect-to', `echo.test:443:127.0.0.1:${echo.httpsPort}`,
      '--connect-to', `api.echo.test:443:127.0.0.1:${echo.httpsPort}`,
      '--connect-to', `other.echo.test:443:127.0.0.1:${echo.httpsPort}`,
      '--upstream-ca', ca.certFile,
    ];
    const set = await runTagbox(['secret', 'set', 'gh-token'], { env: { TAGBOX_HOME: home }, input: canary });
    expect(set.code).toBe(0);
  });
  afterAll(async () => {
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const exec = (args: string[], input?: string) => runTagbox(['exec', ...args], { env: { TAGBOX_HOME: home }, ...(input !== undefined ? { input } : {}) });

  it('passes stdin, stdout, stderr and the exit code through, in an empty writable /workspace', async () => {
    const r = await exec(['--', 'sh', '-c', 'pwd; ls -A | wc -l; cat; echo oops >&2; echo hi > f && cat f; exit 3'], 'from stdin\n');
    expect(r.stdout).toBe('/workspace\n0\nfrom stdin\nhi\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.code).toBe(3);
  });

  it('leaves nothing behind when the command ends', async () => {
    await exec(['--', 'sh', '-c', 'echo x > /workspace/left; (sleep 60 &) ; setsid sleep 60 &']);
    const sandboxes = join(home, 'sandboxes');
    // Only the provider's shared, read-only helpers (dot entries) may remain.
    expect(existsSync(sandboxes) ? readdirSync(sandboxes).filter((d) => !d.startsWith('.')) : []).toEqual([]);
    expect(existsSync(join(home, 'run')) ? readdirSync(join(home, 'run')) : []).toEqual([]);
  });

  it('reaches nothing with no bundles', async () => {
    const r = await exec(['--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_connect}" https://echo.test/; echo " $?"']);
    expect(r.stdout).toBe('403 56\n');
  });

  it('injects the credential at the proxy, and the sandbox never sees it', async () => {
    const before = echo.received.length;
    const r = await exec([
      '--bundles', bundles, ...mapping, '--',
      'sh', '-c',
      // Dump what the sandbox can read — env, every process's environment and
      // argv, and every file outside the read-only system binds — and search
      // it here, on the host: the canary itself never goes in.
      `env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n'; find /etc /run /tmp /workspace /home /dev/shm -type f -exec cat {} + 2>/dev/null; echo; echo @@SPLIT@@; curl -s https://api.echo.test/repos/acme/x`,
    ]);
    expect(r.code).toBe(0);
    const [inside, response] = r.stdout.split('@@SPLIT@@\n');
    expect(inside).not.toContain(canary);
    expect(inside).not.toContain(canary.slice(7, 27));
    expect(inside).toContain('HTTPS_PROXY=http://127.0.0.1:3128');
    expect(JSON.parse(response!).headers.authorization).toBe(`Bearer ${canary}`);
    expect(echo.received.length).toBe(before + 1);
  });

  it('uses only the bundles named with --bundle', async () => {
    const r = await exec(['--bundles', bundles, '--bundle', 'other', ...mapping, '--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_code} " https://other.echo.test/; curl -s -o /dev/null -w "%{http_connect}" https://echo.test/']);
    expect(r.stdout).toBe('200 403');
    const bad = await exec(['--bundles', bundles, '--bundle', 'nope', '--', 'true']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no bundle named "nope"');
  });

  it('audits every egress decision with its session, and never the secret', async () => {
    await exec(['--bundles', bundles, ...mapping, '--', 'sh', '-c', 'curl -s -o /dev/null https://api.echo.test/repos/acme/y; curl -s -o /dev/null https://evil.test/']);
    const exported = await runTagbox(['audit', 'export'], { env: { TAGBOX_HOME: home } });
    expect(exported.stdout).not.toContain(canary);
    const events = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const egress = events.filter((e) => e.type === 'egress');
    const cred = egress.find((e) => e.path === '/repos/acme/y');
    expect(cred).toMatchObject({ outcome: 'credential', connection: 'gh', bundle: 'eng', method: 'GET', scheme: 'https', host: 'api.echo.test', port: 443, status: 200 });
    expect(String(cred!.session)).toMatch(/^exec-/);
    expect(egress.some((e) => e.host === 'evil.test' && e.outcome === 'blocked' && e.session === cred!.session)).toBe(true);
    expect(events.some((e) => e.type === 'credential-use' && e.secret === 'gh-token')).toBe(true);
    expect((await runTagbox(['audit', 'verify'], { env: { TAGBOX_HOME: home } })).code).toBe(0);
  });

  it('exits 125 with the reason when the sandbox cannot be set up', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'tagbox-nobwrap-'));
    const r = await runTagbox(['exec', '--', 'true'], { env: { TAGBOX_HOME: home, PATH: bin } });
    rmSync(bin, { recursive: true, force: true });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/bubblewrap/);
  });

  it('exits 2 on bad flags and a bad bundle file', async () => {
    expect((await exec(['--timeout', 'soon', '--', 'true'])).code).toBe(2);
    const badFile = join(dir, 'bad.yaml');
    writeFileSync(badFile, 'bundles:\n  - name: x\n    domains: ["*"]\n');
    const r = await exec(['--bundles', badFile, '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(badFile);
  });
});
