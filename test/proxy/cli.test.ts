import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { curl, DEFAULT_BUNDLES } from './harness.js';
import { spawnEchoProxy } from './proxy-cli.js';

/**
 * `tagbox proxy` end to end, as a user runs it: a secret set with the CLI,
 * the proxy spawned with --bundles/--listen/--connect-to/--upstream-ca, curl
 * through it trusting `tagbox ca cert`, then `tagbox audit export`.
 */
let backend: TestBackend;
let upstreamCa: TestCa;
let echo: EchoUpstream;
beforeAll(async () => {
  backend = await createTestBackend('sqlite');
  upstreamCa = await createTestCa();
  echo = await startEchoUpstream({ ca: upstreamCa, names: ['echo.test', 'api.echo.test'] });
});
afterAll(async () => {
  await echo?.close();
  await backend?.cleanup();
});

describe('tagbox proxy', () => {
  it('serves the bundles, injects the secret, blocks the rest, and audits every decision', async () => {
    const env = backend.env;
    const secret = `cli-secret-${Date.now()}`;
    const set = await runTagbox(['secret', 'set', 'echo-token'], { env, input: secret });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).not.toContain(secret);

    const bundles = join(backend.home, 'bundles.yaml');
    writeFileSync(bundles, DEFAULT_BUNDLES);
    const proxy = await spawnEchoProxy(bundles, echo, upstreamCa.certFile, env);
    try {
      const port = proxy.port;
      const caCert = await runTagbox(['ca', 'cert'], { env });
      expect(caCert.code).toBe(0);
      expect(caCert.stdout).toContain('-----BEGIN CERTIFICATE-----');
      const caFile = join(backend.home, 'deploy-ca.pem');
      writeFileSync(caFile, caCert.stdout);
      const via = ['-x', `http://127.0.0.1:${port}`, '--cacert', caFile];

      const before = echo.received.length;
      const cred = await curl('https://api.echo.test/repos/acme/cli', via, backend.home);
      expect(cred.status, cred.stderr).toBe(200);
      expect(echo.received[before]!.headers.authorization).toBe(`Bearer ${secret}`);
      const allowed = await curl('https://echo.test/cli', via, backend.home);
      expect(allowed.status).toBe(200);
      const blocked = await curl('https://evil.test/cli', via, backend.home);
      expect(blocked.connectStatus).toBe(403);
      const plainBlocked = await curl('http://evil.test/cli', via, backend.home);
      expect(plainBlocked.status).toBe(403);
      expect(plainBlocked.headers).toMatch(/x-tagbox-decision: blocked/i);
      expect(plainBlocked.body).toMatch(/evil\.test/);
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
    }

    const exported = await runTagbox(['audit', 'export', '--type', 'egress'], { env });
    expect(exported.code, exported.stderr).toBe(0);
    const events = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    expect(events.map((e) => [e.outcome, e.method, e.host, e.path])).toEqual([
      ['credential', 'GET', 'api.echo.test', '/repos/acme/cli'],
      ['allowlist', 'GET', 'echo.test', '/cli'],
      ['blocked', 'CONNECT', 'evil.test', ''],
      ['blocked', 'GET', 'evil.test', '/cli'],
    ]);
    expect(events[0]).toMatchObject({ type: 'egress', scheme: 'https', port: 443, connection: 'echo-api', bundle: 'base', status: 200 });
    const all = await runTagbox(['audit', 'export'], { env });
    expect(all.stdout).not.toContain(secret);
  });
});
