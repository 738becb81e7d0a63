import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import { runTagbox } from '../helpers/cli.js';
import { policyOf, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Nothing derived from a query string (or a fragment) is ever recorded: not in
 * an audit event's path, host or reason, not in a log line. The attack sends a
 * unique marker in the query through every refusal path the proxy has (and a
 * few successes), then searches the whole audit log, `tagbox audit export` and
 * the proxy's logs for it.
 */
const M = `qmark${randomBytes(8).toString('hex')}`;
const Q = `?token=${M}&x=1`;
const logLines: string[] = [];
let h: Harness;
let closedPort: number;

beforeAll(async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  h = await startHarness({
    logLines,
    connectTo: [`down.echo.test:443:127.0.0.1:${closedPort}`, `down.echo.test:80:127.0.0.1:${closedPort}`],
  });
  h.listener.setPolicy(
    policyOf(`bundles:
  - name: base
    domains:
      - echo.test
      - other.echo.test
      - unnamed.test
      - down.echo.test
      - host: localhost
        ports: [${h.echo.httpPort}]
    connections:
      - name: echo-api
        secret: echo-token
        allowedWebsites: [api.echo.test]
        inject: {header: Authorization, value: "Bearer {{secret}}"}
`),
  );
});
afterAll(async () => h?.close());

const upgrade = (uri: string, host: string) =>
  `GET ${uri} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
const inTunnel = (target: string, request: string, servername = target.split(':')[0]) =>
  tlsThroughConnect({ port: h.port }, { target, servername, ca: h.deployCa.certPem, request, timeoutMs: 3000 });

describe('query strings never reach the audit log or the logs', () => {
  it('a marker sent through every refusal path appears nowhere in the audit, the export or the logs', async () => {
    const mark = await h.mark();
    const statuses: Array<[string, number]> = [];
    const raw = async (label: string, data: string) => statuses.push([label, statusOf(await h.raw(data, { timeoutMs: 2000 }))]);
    const tls = async (label: string, target: string, request: string, servername?: string) => {
      const r = await inTunnel(target, request, servername);
      statuses.push([label, statusOf(r.response)]);
    };

    // Plain proxy requests.
    await raw('mismatched authority', `GET http://echo.test/x${Q} HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    await raw('invalid Host header', `GET http://echo.test/x${Q} HTTP/1.1\r\nHost: echo.test${Q}\r\nConnection: close\r\n\r\n`);
    await raw('two Host headers', `GET http://echo.test/x${Q} HTTP/1.1\r\nHost: echo.test\r\nHost: other.echo.test\r\nConnection: close\r\n\r\n`);
    await raw('not absolute', `GET /x${Q} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`);
    await raw('user-info', `GET http://u:p@echo.test/x${Q} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`);
    await raw('fragment', `GET http://echo.test/x#${M} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`);
    await raw('bad port', `GET http://echo.test:99999/x${Q} HTTP/1.1\r\nHost: echo.test:99999\r\nConnection: close\r\n\r\n`);
    await raw('blocked', `GET http://evil.test/x${Q} HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    await raw('SSRF', `GET http://localhost:${h.echo.httpPort}/x${Q} HTTP/1.1\r\nHost: localhost:${h.echo.httpPort}\r\nConnection: close\r\n\r\n`);
    await raw('upstream down', `GET http://down.echo.test/x${Q} HTTP/1.1\r\nHost: down.echo.test\r\nConnection: close\r\n\r\n`);
    await raw('smuggling shape', `POST http://echo.test/x${Q} HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    await raw('credential over plain http', `GET http://api.echo.test/x${Q} HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n`);
    // CONNECT.
    await raw('CONNECT target with a query', `CONNECT evil.test:443${Q} HTTP/1.1\r\nHost: evil.test:443\r\n\r\n`);
    await raw('CONNECT target with a fragment', `CONNECT echo.test:443#${M} HTTP/1.1\r\nHost: echo.test:443\r\n\r\n`);
    await raw('CONNECT Host mismatch', `CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test${Q}\r\n\r\n`);
    // Inside intercepted tunnels.
    await tls('tunnel names another host', 'echo.test:443', `GET https://evil.test/x${Q} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`);
    await tls('tunnel names another host (http)', 'echo.test:443', `GET http://evil.test/x${Q} HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    await tls('tunnel Host mismatch', 'echo.test:443', `GET /x${Q} HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    await tls('tunnel invalid Host', 'echo.test:443', `GET /x${Q} HTTP/1.1\r\nHost: echo.test${Q}\r\nConnection: close\r\n\r\n`);
    await tls('SNI mismatch', 'echo.test:443', `GET /x${Q} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`, 'other.echo.test');
    await tls('upstream TLS unverifiable', 'unnamed.test:443', `GET /x${Q} HTTP/1.1\r\nHost: unnamed.test\r\nConnection: close\r\n\r\n`);
    await tls('upstream refused', 'down.echo.test:443', `GET /x${Q} HTTP/1.1\r\nHost: down.echo.test\r\nConnection: close\r\n\r\n`);
    // Upgrades.
    await raw('upgrade blocked', upgrade(`http://evil.test/ws${Q}`, 'evil.test'));
    await raw('upgrade Host mismatch', upgrade(`http://echo.test/ws${Q}`, 'evil.test'));
    await raw('upgrade invalid Host', upgrade(`http://echo.test/ws${Q}`, `echo.test${Q}`));
    await raw('upgrade upstream down', upgrade(`http://down.echo.test/ws${Q}`, 'down.echo.test'));
    await tls('upgrade in a tunnel naming another host', 'echo.test:443', upgrade(`https://evil.test/ws${Q}`, 'echo.test'));
    // A third party's error text that quotes a URL (here: the vault's resolver).
    h.setResolver({ resolve: () => Promise.reject(new Error(`fetch https://idp.example/t${Q} failed`)) });
    try {
      await tls('credential unavailable', 'api.echo.test:443', `GET /x${Q} HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n`);
    } finally {
      h.setResolver(undefined);
    }
    // And successes, for completeness.
    await tls('allowed', 'echo.test:443', `GET /ok${Q} HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n`);
    await tls('credential', 'api.echo.test:443', `GET /ok${Q} HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n`);

    // Every path was refused as expected (so the search below is not vacuous)...
    const refused = statuses.filter(([label]) => !['allowed', 'credential'].includes(label));
    for (const [label, status] of refused) expect([0, 400, 403, 421, 502], label).toContain(status);
    expect(statuses.filter(([, s]) => s === 200).map(([l]) => l)).toEqual(['allowed', 'credential']);
    const events: AuditEvent[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      events.length = 0;
      for await (const e of h.audit.query({})) if (e.seq > mark) events.push(e);
      if (events.filter((e) => e.type === 'egress').length >= 24) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const egress = events.filter((e) => e.type === 'egress');
    expect(egress.length).toBeGreaterThanOrEqual(24);
    expect(egress.some((e) => /inside a tunnel/.test(String(e.reason)))).toBe(true);
    expect(egress.some((e) => /is not a valid authority/.test(String(e.reason)))).toBe(true);

    // ...and the marker is nowhere.
    expect(JSON.stringify(events)).not.toContain(M);
    const exported = await runTagbox(['audit', 'export'], { env: h.backend.env });
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain('inside a tunnel');
    expect(exported.stdout).not.toContain(M);
    expect(logLines.join('\n')).not.toContain(M);
    await h.expectServing();
  });
});

describe('redact helpers', async () => {
  const { loggable, shownTarget, withoutQueries } = await import('../../src/proxy/redact.js');
  it('shownTarget cuts at ? or #, escapes non-printables, bounds the length', () => {
    expect(shownTarget('https://x.test/a?token=1')).toBe('https://x.test/a');
    expect(shownTarget('/a#frag?x')).toBe('/a');
    expect(shownTarget('a b\r\nc')).toBe('a\\x20b\\x0d\\x0ac');
    expect(shownTarget('x'.repeat(300))).toBe(`${'x'.repeat(100)}…`);
  });
  it('withoutQueries drops every query or fragment run in free text', () => {
    expect(withoutQueries('fetch https://a/b?c=d failed; then /e#f "g?h"')).toBe('fetch https://a/b failed; then /e "g"');
    expect(withoutQueries('no query here')).toBe('no query here');
  });
  it('loggable keeps type, code and message, without queries or extra fields', () => {
    const error = Object.assign(new TypeError(`Invalid URL https://a/b?${M}`), { code: 'ERR_INVALID_URL', input: `https://a/b?${M}` });
    const out = loggable(error);
    expect(out).toMatchObject({ type: 'TypeError', code: 'ERR_INVALID_URL', message: 'Invalid URL https://a/b' });
    expect(JSON.stringify(out)).not.toContain(M);
  });
});
