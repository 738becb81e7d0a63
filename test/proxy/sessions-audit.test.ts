import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import { runTagbox } from '../helpers/cli.js';
import { DEFAULT_BUNDLES, policyOf, rawExchange, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Who is asking (the socket is the session), atomic policy swaps, and the
 * audit trail: exactly one egress event per decision with the CONTRACT.md
 * fields, and never the secret.
 */
let h: Harness;
let sockDir: string;
beforeAll(async () => {
  h = await startHarness({ session: 'tcp-session' });
  sockDir = mkdtempSync(join(tmpdir(), 'tagbox-sock-'));
});
afterAll(async () => {
  await h?.close();
  rmSync(sockDir, { recursive: true, force: true });
});

describe('policy swap', () => {
  it('setPolicy takes effect for the next request, on an already open connection too', async () => {
    expect((await h.curl('https://other.echo.test/a')).status).toBe(200);
    h.listener.setPolicy(policyOf('bundles:\n  - name: narrow\n    domains: [echo.test]\n'));
    try {
      const r = await h.curl('https://other.echo.test/a');
      expect(r.connectStatus).toBe(403);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
    // Inside a tunnel opened before the swap, the next request is decided on the new policy.
    const tunnel = await openTunnel(h.port, 'other.echo.test', h.deployCa.certPem);
    try {
      expect(statusOf(await tunnel.send('GET /before HTTP/1.1\r\nHost: other.echo.test\r\n\r\n'))).toBe(200);
      h.listener.setPolicy(policyOf('bundles:\n  - name: narrow\n    domains: [echo.test]\n'));
      const after = await tunnel.send('GET /after HTTP/1.1\r\nHost: other.echo.test\r\n\r\n');
      expect(statusOf(after)).toBe(403);
      expect(after.toLowerCase()).toContain('x-tagbox-decision: blocked');
    } finally {
      tunnel.close();
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
    await h.expectServing();
  });
});

describe('per-session identity', () => {
  it('two Unix-socket listeners: each request is decided by its own policy and audited with its own session', async () => {
    const a = await h.proxy.listen({ socketPath: join(sockDir, 'a.sock') }, { session: 'sess-a', policy: policyOf('bundles:\n  - name: only-echo\n    domains: [echo.test]\n') });
    const b = await h.proxy.listen({ socketPath: join(sockDir, 'b.sock') }, { session: 'sess-b', policy: policyOf('bundles:\n  - name: only-other\n    domains: [other.echo.test]\n') });
    try {
      expect(statSync(join(sockDir, 'a.sock')).mode & 0o777).toBe(0o600);
      const mark = await h.mark();
      const get = (host: string) => `GET http://${host}/s HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      const onA = [await rawExchange({ path: join(sockDir, 'a.sock') }, get('echo.test')), await rawExchange({ path: join(sockDir, 'a.sock') }, get('other.echo.test'))];
      const onB = [await rawExchange({ path: join(sockDir, 'b.sock') }, get('echo.test')), await rawExchange({ path: join(sockDir, 'b.sock') }, get('other.echo.test'))];
      expect(onA.map(statusOf)).toEqual([200, 403]);
      expect(onB.map(statusOf)).toEqual([403, 200]);
      // A header claiming another session changes nothing.
      const tls = await tlsThroughConnect(
        { path: join(sockDir, 'b.sock') },
        { target: 'other.echo.test:443', servername: 'other.echo.test', ca: h.deployCa.certPem, request: 'GET /t HTTP/1.1\r\nHost: other.echo.test\r\nX-Tagbox-Session: sess-a\r\nConnection: close\r\n\r\n' },
      );
      expect(statusOf(tls.response)).toBe(200);
      const events = await h.egressSince(mark, 5);
      expect(events.map((e) => [e.session, e.host, e.outcome])).toEqual([
        ['sess-a', 'echo.test', 'allowlist'],
        ['sess-a', 'other.echo.test', 'blocked'],
        ['sess-b', 'echo.test', 'blocked'],
        ['sess-b', 'other.echo.test', 'allowlist'],
        ['sess-b', 'other.echo.test', 'allowlist'],
      ]);
      expect(events.find((e) => e.session === 'sess-a' && e.outcome === 'allowlist')).toMatchObject({ bundle: 'only-echo' });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** A kept-alive intercepted tunnel: one request at a time, answers read by Content-Length. */
async function openTunnel(port: number, host: string, ca: string): Promise<{ send(request: string): Promise<string>; close(): void }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => {
    socket.once('data', () => resolve());
    socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  });
  const tls = tlsConnect({ socket, servername: host, ca });
  await new Promise<void>((resolve, reject) => tls.once('secureConnect', () => resolve()).once('error', reject));
  return {
    send: (request) =>
      new Promise((resolve) => {
        let buf = '';
        const onData = (d: Buffer) => {
          buf += d.toString('latin1');
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
          if (buf.length >= end + 4 + length) {
            tls.off('data', onData);
            resolve(buf);
          }
        };
        tls.on('data', onData);
        tls.once('close', () => resolve(buf));
        tls.write(request);
      }),
    close: () => tls.destroy(),
  };
}

/** The CONTRACT.md egress fields. */
function expectEgressShape(e: AuditEvent) {
  expect(e.type).toBe('egress');
  expect(new Date(e.ts).toISOString()).toBe(e.ts);
  for (const k of ['outcome', 'method', 'scheme', 'host', 'port', 'path'] as const) expect(e, k).toHaveProperty(k);
  expect(['credential', 'allowlist', 'blocked']).toContain(e.outcome);
}

describe('audit: one egress event per decision, CONTRACT.md fields, never the secret', () => {
  it('a mixed run produces exactly one event per decision, with the right fields', async () => {
    const mark = await h.mark();
    await h.curl('https://api.echo.test/repos/acme/one?token=abc'); // credential
    await h.curl('https://echo.test/two'); // allowlist
    await h.curl('https://evil.test/three'); // blocked CONNECT
    await h.raw('GET http://evil.test/four HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n'); // blocked HTTP
    await h.raw('GET http://echo.test/five HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n'); // 421
    await h.curl('https://api.echo.test/repos/acme/six', ['-X', 'POST', '-d', 'x']); // allowlist (outside narrowing)
    const events = await h.egressSince(mark, 6);
    expect(events).toHaveLength(6);
    events.forEach(expectEgressShape);
    const [one, two, three, four, five, six] = events;
    expect(one).toMatchObject({ outcome: 'credential', method: 'GET', scheme: 'https', host: 'api.echo.test', port: 443, path: '/repos/acme/one', connection: 'echo-api', bundle: 'base', session: 'tcp-session', status: 200 });
    expect(JSON.stringify(one)).not.toContain('token=abc');
    expect(two).toMatchObject({ outcome: 'allowlist', method: 'GET', host: 'echo.test', path: '/two', bundle: 'base', status: 200 });
    expect(three).toMatchObject({ outcome: 'blocked', method: 'CONNECT', host: 'evil.test', port: 443, status: 403 });
    expect(three!.reason).toMatch(/evil\.test/);
    expect(four).toMatchObject({ outcome: 'blocked', method: 'GET', scheme: 'http', host: 'evil.test', port: 80, path: '/four', status: 403 });
    expect(five).toMatchObject({ outcome: 'blocked', status: 421 });
    expect(six).toMatchObject({ outcome: 'allowlist', method: 'POST', host: 'api.echo.test', status: 200 });
    expect(six!.reason).toMatch(/narrowing|read-only|method/i);
    for (const e of events) expect(JSON.stringify(e)).not.toContain(h.secret);
  });

  it('tagbox audit export shows the events and never the secret; the chain verifies', async () => {
    await h.curl('https://api.echo.test/repos/acme/export');
    const exported = await runTagbox(['audit', 'export'], { env: h.backend.env });
    expect(exported.code).toBe(0);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    expect(lines.filter((e) => e.type === 'egress' && e.outcome === 'credential').length).toBeGreaterThanOrEqual(2);
    expect(exported.stdout).not.toContain(h.secret);
    expect(exported.stdout).not.toContain(Buffer.from(h.secret).toString('base64'));
    const verify = await runTagbox(['audit', 'verify'], { env: h.backend.env });
    expect(verify.code).toBe(0);
  });
});

describe('audit on Postgres', () => {
  it('credential, allowlist and blocked decisions are each audited once, without the secret', async () => {
    const pg = await startHarness({ backend: 'postgres', session: 'pg-session' });
    try {
      const mark = await pg.mark();
      expect((await pg.curl('https://api.echo.test/repos/acme/pg')).status).toBe(200);
      expect((await pg.curl('https://echo.test/pg')).status).toBe(200);
      expect((await pg.curl('https://evil.test/pg')).connectStatus).toBe(403);
      const events = await pg.egressSince(mark, 3);
      expect(events.map((e) => [e.outcome, e.host, e.session])).toEqual([
        ['credential', 'api.echo.test', 'pg-session'],
        ['allowlist', 'echo.test', 'pg-session'],
        ['blocked', 'evil.test', 'pg-session'],
      ]);
      events.forEach(expectEgressShape);
      const all: AuditEvent[] = [];
      for await (const e of pg.audit.query({})) all.push(e);
      expect(JSON.stringify(all)).not.toContain(pg.secret);
      expect((await pg.audit.verify()).ok).toBe(true);
    } finally {
      await pg.close();
    }
  });
});
