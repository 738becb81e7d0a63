import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

/**
 * A dynamic credential's token endpoint is an SSRF vector: an OAuth 2.0
 * tokenUrl (or a GitHub App apiUrl) could name the proxy host's loopback, and
 * the refusal text would tell an open port from a closed one. The attack:
 * point the token URL at 127.0.0.1 on an open and on a closed port and make a
 * request that needs the credential. Both must be refused before any
 * connection is made, and the sandbox must see the same 403 body for both.
 */
const BUNDLES = `
bundles:
  - name: base
    domains: [echo.test]
    connections:
      - name: idp
        secret: idp-token
        allowedWebsites: [api.echo.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
`;

let h: Harness;
let local: Server;
let openPort: number;
let closedPort: number;
let connections = 0;

beforeAll(async () => {
  h = await startHarness({ bundles: BUNDLES });
  local = createServer((s) => {
    connections += 1;
    s.destroy();
  });
  await new Promise<void>((r) => local.listen(0, '127.0.0.1', () => r()));
  openPort = (local.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
});
afterAll(async () => {
  await h?.close();
  await new Promise<void>((r) => local.close(() => r()));
});

const oauth = (tokenUrl: string) => Buffer.from(JSON.stringify({ tokenUrl, clientId: 'c', clientSecret: 'client-secret-value' }));

describe('token endpoints on loopback', () => {
  it('open and closed ports: both refused before connecting, identical 403 bodies, the detail only in the audit', async () => {
    const bodies: string[] = [];
    const mark = await h.mark();
    const before = h.echo.received.length;
    for (const url of [`https://127.0.0.1:${openPort}/token`, `https://127.0.0.1:${closedPort}/token`, `https://localhost:${openPort}/token`]) {
      await h.vault!.sealer.put('idp-token', oauth(url), 'oauth2-client-credentials');
      const r = await h.curl('https://api.echo.test/data');
      expect(r.status).toBe(403);
      expect(r.headers).toMatch(/x-tagbox-decision: blocked/i);
      bodies.push(r.body);
    }
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]).toBe('blocked by Tagbox: credential for base/idp unavailable: the token endpoint could not be used\n');
    // Nothing reached the local service, and nothing went to the upstream bare.
    expect(connections).toBe(0);
    expect(h.receivedSince(before)).toEqual([]);
    // Admins see why in the audit.
    const events = await h.egressSince(mark, 3);
    expect(events.map((e) => [e.outcome, e.connection, e.status])).toEqual(Array(3).fill(['blocked', 'idp', 403]));
    for (const e of events) expect(e.reason).toMatch(/credential for base\/idp unavailable: token request to .* refused before connecting: .* forbidden address/);
    for (const e of events) expect(JSON.stringify(e)).not.toContain('client-secret-value');
    await h.expectServing();
  });

  it('an unreachable (but allowed) token endpoint is shown to the caller in the same general terms', async () => {
    // An explicit mapping is an admin decision and may reach loopback: here a closed port.
    const { createCredentialResolver } = await import('../../src/vault/private/resolver.js');
    const { createTokenHttpClient } = await import('../../src/vault/private/token-http.js');
    const opener = await h.vault!.opener({ audit: h.audit });
    h.setResolver(createCredentialResolver({ opener, http: createTokenHttpClient({ connectTo: [`idp.example.test:443:127.0.0.1:${closedPort}`] }) }));
    try {
      const mark = await h.mark();
      await h.vault!.sealer.put('idp-token', oauth('https://idp.example.test/token'), 'oauth2-client-credentials');
      const r = await h.curl('https://api.echo.test/data');
      expect(r.status).toBe(403);
      expect(r.body).toBe('blocked by Tagbox: credential for base/idp unavailable: the token endpoint could not be used\n');
      const [event] = await h.egressSince(mark, 1);
      expect(event!.reason).toMatch(/ECONNREFUSED/);
    } finally {
      h.setResolver(undefined);
    }
  });
});
