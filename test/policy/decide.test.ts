import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBundleFile } from '../../src/policy/bundle-file.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide, decideTunnel, normaliseRequest } from '../../src/policy/decide.js';
import { hostMatches, normaliseHost, parseHostPattern } from '../../src/policy/hosts.js';
import type { EgressRequest } from '../../src/policy/decide.js';
import { bundle, connection, req } from './fixtures.js';

const CONTRACT_EXAMPLE = `bundles:
  - name: platform-eng
    domains:
      - registry.npmjs.org
      - "*.githubusercontent.com"
      - host: internal.example.com
        ports: [443, 8443]
    connections:
      - name: github
        secret: gh-token
        allowedWebsites: [api.github.com, github.com]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
        narrow:
          host: api.github.com
          pathPrefix: /repos/acme/
          readOnly: true
`;
const policy = compilePolicy(parseBundleFile(CONTRACT_EXAMPLE, 'bundles.yaml').bundles);
const outcome = (host: string, path = '/', method = 'GET', port = 443) => decide(policy, req(host, path, method, port)).outcome;

describe('decide: the CONTRACT.md example', () => {
  it('credential inside the narrowing, with what to inject', () => {
    expect(decide(policy, req('api.github.com', '/repos/acme/widgets/pulls?state=open'))).toEqual({
      outcome: 'credential',
      reason: 'host api.github.com matches connection platform-eng/github (api.github.com, path prefix /repos/acme/, read-only)',
      rule: 'api.github.com',
      bundle: 'platform-eng',
      connection: 'github',
      inject: { header: 'Authorization', value: 'Bearer {{secret}}', secret: 'gh-token' },
      host: 'api.github.com',
    });
  });

  it.each([
    // host, path, method, port, outcome
    ['api.github.com', '/repos/acme/x', 'GET', 443, 'credential'],
    ['api.github.com', '/repos/acme/x', 'HEAD', 443, 'credential'],
    ['api.github.com', '/repos/acme/x', 'OPTIONS', 443, 'credential'],
    ['API.GITHUB.COM.', '/repos/acme/x', 'GET', 443, 'credential'],
    ['api.github.com', '/repos/acme/x', 'GET', 80, 'blocked'], // plain http would carry the credential in clear
    // method narrowing: write methods and non-upper-case methods are not read-only
    ['api.github.com', '/repos/acme/x', 'POST', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'PUT', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'PATCH', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'DELETE', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'get', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'Get', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'TRACE', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x', 'CONNECT', 443, 'allowlist'],
    // path escapes
    ['api.github.com', '/repos/acme-evil/x', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/../other', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/%2e%2e/other', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/%2E%2E/other', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme%2fx', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/x%2F..%2F..%2Fother', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme/..;/other', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme\\..\\other', 'GET', 443, 'allowlist'],
    ['api.github.com', '/Repos/acme/x', 'GET', 443, 'allowlist'],
    ['api.github.com', '/repos/acme', 'GET', 443, 'allowlist'],
    // narrow.host: github.com is an allowed website but not the narrowed host
    ['github.com', '/repos/acme/x', 'GET', 443, 'allowlist'],
    // domains
    ['registry.npmjs.org', '/x', 'PUT', 443, 'allowlist'],
    ['objects.githubusercontent.com', '/', 'GET', 443, 'allowlist'],
    ['a.b.githubusercontent.com', '/', 'GET', 80, 'allowlist'],
    ['githubusercontent.com', '/', 'GET', 443, 'blocked'],
    ['internal.example.com', '/', 'GET', 8443, 'allowlist'],
    ['internal.example.com', '/', 'GET', 443, 'allowlist'],
    ['internal.example.com', '/', 'GET', 80, 'blocked'], // ports given: exactly those
    // ports
    ['registry.npmjs.org', '/', 'GET', 8080, 'blocked'],
    ['api.github.com', '/repos/acme/x', 'GET', 8443, 'blocked'],
    // wildcard confusion and friends
    ['evil-githubusercontent.com', '/', 'GET', 443, 'blocked'],
    ['xgithubusercontent.com', '/', 'GET', 443, 'blocked'],
    ['githubusercontent.com.evil.test', '/', 'GET', 443, 'blocked'],
    ['api.github.com.evil.test', '/repos/acme/x', 'GET', 443, 'blocked'],
    ['evil-api.github.com', '/repos/acme/x', 'GET', 443, 'blocked'],
    ['registry.npmjs.org.', '/', 'GET', 443, 'allowlist'],
    ['registry.npmjs.org..', '/', 'GET', 443, 'blocked'],
    ['registry.npmjs.org:443', '/', 'GET', 443, 'blocked'],
    ['', '/', 'GET', 443, 'blocked'],
    ['127.0.0.1', '/', 'GET', 443, 'blocked'],
    ['2130706433', '/', 'GET', 443, 'blocked'],
    ['[::1]', '/', 'GET', 443, 'blocked'],
    ['api.github.com', '/repos/acme/x', 'GET', 0, 'blocked'],
    ['api.github.com', '/repos/acme/x', 'GET', 65536, 'blocked'],
  ])('%s %s %s :%s -> %s', (host, path, method, port, expected) => {
    expect(outcome(host, path, method, port)).toBe(expected);
  });

  it('reasons are one line naming the host', () => {
    expect(decide(policy, req('evil.example')).reason).toBe('host evil.example is not allowed by any bundle');
    expect(decide(policy, req('internal.example.com', '/', 'GET', 80)).reason).toBe(
      'host internal.example.com is allowed by bundle platform-eng (internal.example.com) on ports 443, 8443, not on port 80',
    );
    expect(decide(policy, req('api.github.com', '/repos/acme/x', 'POST')).reason).toMatch(
      /^host api\.github\.com is allowed by platform-eng\/github \(allowedWebsites: api\.github\.com\); outside the narrowing of platform-eng\/github \(method POST is not read-only\), so no credential$/,
    );
    expect(decide(policy, req('api.github.com', '/repos/acme%2Fx')).reason).toMatch(/the path has an encoded slash/);
    expect(decide(policy, req('exa mple.com')).reason).toMatch(/^host "exa mple\.com" is invalid: invalid character/);
    for (const d of [decide(policy, req('evil.example')), decide(policy, req('api.github.com', '/x', 'DELETE'))]) expect(d.reason).not.toContain('\n');
  });

  it('normaliseRequest is what decide uses, and reports bad input', () => {
    const n = normaliseRequest(req('BÜCHER.example.', '/a/./b?q'));
    expect(n.ok && [n.request.host.host, n.request.path.path]).toEqual(['xn--bcher-kva.example', '/a/b']);
    expect(normaliseRequest(req('x.com', '/', 'GET', 1.5)).ok).toBe(false);
  });
});

describe('decide: most specific wins', () => {
  const p = compilePolicy([
    bundle('org', [], [connection('wide', ['*.example.com']), connection('deep', ['*.api.example.com'])]),
    bundle('chan', [], [
      connection('exact', ['api.example.com']),
      connection('repos', ['api.example.com'], { pathPrefix: '/repos/' }),
      connection('acme', ['api.example.com'], { pathPrefix: '/repos/acme/' }),
      connection('acme-ro', ['*.example.com'], { host: 'ro.example.com', pathPrefix: '/repos/acme/', readOnly: true }),
    ]),
    bundle('ips', [], [connection('net', ['10.0.0.0/8']), connection('subnet', ['10.1.0.0/16']), connection('host', ['10.1.2.3'])]),
  ]);
  it.each([
    ['api.example.com', '/', 'GET', 'chan/exact'],
    ['api.example.com', '/repos/x', 'GET', 'chan/repos'],
    ['api.example.com', '/repos/acme/x', 'GET', 'chan/acme'],
    ['api.example.com', '/repos/acme', 'GET', 'chan/repos'],
    ['api.example.com', '/repos/acme-evil/x', 'GET', 'chan/repos'],
    ['x.api.example.com', '/', 'GET', 'org/deep'],
    ['x.y.api.example.com', '/', 'GET', 'org/deep'],
    ['www.example.com', '/', 'GET', 'org/wide'],
    ['ro.example.com', '/repos/acme/x', 'GET', 'chan/acme-ro'],
    ['ro.example.com', '/repos/acme/x', 'POST', 'org/wide'], // outside the narrower rule: the wildcard's credential applies
    ['10.9.9.9', '/', 'GET', 'ips/net'],
    ['10.1.9.9', '/', 'GET', 'ips/subnet'],
    ['10.1.2.3', '/', 'GET', 'ips/host'],
    ['0x0a.0x01.0x0203', '/', 'GET', 'ips/host'],
    ['::ffff:10.1.2.3', '/', 'GET', 'ips/host'],
  ])('%s %s %s -> %s', (host, path, method, expected) => {
    const d = decide(p, req(host, path, method));
    expect(d.outcome).toBe('credential');
    expect(`${d.bundle}/${d.connection}`).toBe(expected);
  });

  it('a credential is never chosen for a host outside every connection', () => {
    expect(decide(p, req('example.com')).outcome).toBe('blocked');
    expect(decide(p, req('11.0.0.1')).outcome).toBe('blocked');
  });
});

describe('decideTunnel (passthrough and CONNECT): host and port only', () => {
  it('allows hosts on any list, never credential', () => {
    expect(decideTunnel(policy, { host: 'api.github.com', port: 443 })).toMatchObject({ outcome: 'allowlist', connection: 'github', rule: 'api.github.com' });
    expect(decideTunnel(policy, { host: 'x.githubusercontent.com', port: 443 })).toMatchObject({ outcome: 'allowlist', bundle: 'platform-eng' });
    expect(decideTunnel(policy, { host: 'internal.example.com', port: 8443 }).outcome).toBe('allowlist');
    expect(decideTunnel(policy, { host: 'internal.example.com', port: 80 }).outcome).toBe('blocked');
    expect(decideTunnel(policy, { host: 'evil.example', port: 443 }).reason).toBe('host evil.example is not allowed by any bundle');
    expect(decideTunnel(policy, { host: '[::1', port: 443 }).outcome).toBe('blocked');
  });
});

describe('decide: properties', () => {
  const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/);
  const name = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.'));
  const pattern = fc.oneof(name.map((n) => `${n}.test`), name.map((n) => `*.${n}.test`));
  const conn = fc.record({
    websites: fc.array(pattern, { minLength: 1, maxLength: 3 }),
    prefix: fc.option(fc.constantFrom('/a/', '/a', '/a/b/', '/'), { nil: undefined }),
    readOnly: fc.boolean(),
  });
  const host = fc.oneof(
    name.map((n) => `${n}.test`),
    fc.tuple(label, name).map(([l, n]) => `${l}.${n}.test`),
    fc.tuple(label, name).map(([l, n]) => `${l}${n}.test`),
    name.map((n) => `${n}.test.evil`),
    name.map((n) => `${n.toUpperCase()}.TEST.`),
  );
  // The paths below, resolved by hand (undefined: unsafe for prefix matching).
  const RESOLVED: Record<string, string | undefined> = {
    '/': '/',
    '/a': '/a',
    '/a/': '/a/',
    '/a/b/c': '/a/b/c',
    '/a/../b': '/b',
    '/a/%2e%2e/b': '/b',
    '/a%2Fb': undefined,
    '/ab': '/ab',
    '/a/b/': '/a/b/',
    '/b': '/b',
  };
  const path = fc.constantFrom('/', '/a', '/a/', '/a/b/c', '/a/../b', '/a/%2e%2e/b', '/a%2Fb', '/ab', '/a/b/', '/b');
  const method = fc.constantFrom('GET', 'HEAD', 'POST', 'get', 'DELETE');

  it('never returns credential for a host outside the chosen connection’s allowedWebsites or narrowing', () => {
    fc.assert(
      fc.property(fc.array(conn, { minLength: 1, maxLength: 6 }), host, path, method, (conns, h, pth, m) => {
        const bundles = conns.map((c, i) =>
          bundle(`b${i}`, [], [connection('c', c.websites, { ...(c.prefix ? { pathPrefix: c.prefix } : {}), readOnly: c.readOnly })]),
        );
        let p;
        try {
          p = compilePolicy(bundles);
        } catch {
          return; // an ambiguous random policy is rejected at load: fine
        }
        const d = decide(p, req(h, pth, m));
        const nh = normaliseHost(h);
        const onAnyList = nh.ok && conns.some((c) => c.websites.some((w) => hostMatches((parseHostPattern(w) as { ok: true; value: never }).value, nh.value)));
        if (d.outcome === 'credential') {
          const c = conns[Number(d.bundle!.slice(1))]!;
          expect(nh.ok).toBe(true);
          expect(c.websites.some((w) => hostMatches((parseHostPattern(w) as { ok: true; value: never }).value, nh.ok ? nh.value : { host: '' }))).toBe(true);
          if (c.readOnly) expect(['GET', 'HEAD', 'OPTIONS']).toContain(m);
          if (c.prefix) {
            const resolved = RESOLVED[pth];
            expect(resolved).toBeDefined(); // unsafe paths never get a prefixed credential
            const base = c.prefix.endsWith('/') ? c.prefix : `${c.prefix}/`;
            expect(resolved === c.prefix || resolved!.startsWith(base)).toBe(true);
          }
        } else if (d.outcome === 'allowlist') {
          expect(onAnyList).toBe(true);
        } else {
          expect(onAnyList).toBe(false);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('decisions do not depend on the spelling of the host', () => {
    fc.assert(
      fc.property(host, path, method, (h, pth, m) => {
        const a = decide(policy, req(h, pth, m));
        const b = decide(policy, req(`${h.toUpperCase().replace(/\.$/, '')}.`, pth, m));
        expect(b.outcome).toBe(a.outcome);
      }),
    );
  });
});

/**
 * A credential is injected only when the upstream leg is TLS. A plain-http
 * request that would get one is blocked (invariant 7: never sent bare to a
 * host that requires the credential), whatever its port, unless the
 * connection opted in with `plainHttp: true`.
 */
describe('decide: credentials travel over TLS only', () => {
  const p = compilePolicy(
    parseBundleFile(
      `bundles:
  - name: b
    domains: [open.example.com]
    connections:
      - name: tls-only
        secret: s1
        allowedWebsites: [{host: api.example.com, ports: [80, 443, 8080]}]
        inject: {header: Authorization, value: "Bearer {{secret}}"}
        narrow: {pathPrefix: /v1/, readOnly: true}
      - name: said-false
        secret: s2
        allowedWebsites: [false.example.com]
        inject: {header: X-Key, value: "{{secret}}"}
        plainHttp: false
      - name: loopback-svc
        secret: s3
        allowedWebsites: [{host: local.example.com, ports: [80, 443, 8080]}]
        inject: {basic: {username: u}}
        plainHttp: true
`,
      'tls.yaml',
    ).bundles,
  );
  const schemes = ['http', 'https'] as const;
  const ports = [80, 443, 8080];
  const cases: Array<[EgressRequest, string]> = [];
  for (const scheme of schemes) {
    for (const port of ports) {
      for (const method of ['GET', 'POST']) {
        for (const path of ['/v1/x?q=1', '/other']) {
          for (const host of ['api.example.com', 'false.example.com', 'local.example.com', 'open.example.com', 'evil.example.com']) {
            const r: EgressRequest = { method, scheme, host, port, path };
            const defaultPort = port === 80 || port === 443;
            let expected: string;
            if (host === 'evil.example.com') expected = 'blocked';
            else if (host === 'open.example.com') expected = defaultPort ? 'allowlist' : 'blocked';
            else if (host === 'false.example.com') expected = !defaultPort ? 'blocked' : scheme === 'https' ? 'credential' : 'blocked';
            else if (host === 'local.example.com') expected = 'credential';
            else {
              const inside = method === 'GET' && path.startsWith('/v1/');
              expected = !inside ? 'allowlist' : scheme === 'https' ? 'credential' : 'blocked';
            }
            cases.push([r, expected]);
          }
        }
      }
    }
  }
  it.each(cases)('%o -> %s', (r, expected) => {
    const d = decide(p, r);
    expect(d.outcome).toBe(expected);
    if (d.outcome === 'credential') expect(r.scheme === 'https' || d.connection === 'loopback-svc').toBe(true);
    if (d.outcome === 'blocked' && d.connection !== undefined) {
      // Refused because of the scheme: the reason names the host and says to use https.
      expect(r.scheme).toBe('http');
      expect(d.reason).toContain(`host ${r.host} matches connection b/${d.connection}`);
      expect(d.reason).toContain(`use https://${r.host}/`);
      expect(d.reason).toContain('plainHttp: true');
      expect(d.inject).toBeUndefined();
    }
  });

  it('the attack: a connection limited to port 443, asked for http://host:443/', () => {
    const only443 = compilePolicy([bundle('b', [], [connection('c', [{ host: 'api.github.com', ports: [443] }])])]);
    const d = decide(only443, { method: 'GET', scheme: 'http', host: 'api.github.com', port: 443, path: '/user' });
    expect(d).toMatchObject({ outcome: 'blocked', connection: 'c', bundle: 'b', host: 'api.github.com' });
    expect(d.inject).toBeUndefined();
    expect(d.reason).toBe(
      'host api.github.com matches connection b/c (api.github.com), whose credential is only sent over TLS: use https://api.github.com/ ' +
        '(plain http is blocked so the credential never travels in clear; plainHttp: true on the connection allows it, e.g. for a loopback service)',
    );
    expect(decide(only443, { method: 'GET', scheme: 'https', host: 'api.github.com', port: 443, path: '/user' }).outcome).toBe('credential');
  });

  it('plainHttp is validated by the bundle schema', () => {
    const bad = `bundles:\n  - name: b\n    connections:\n      - name: c\n        secret: s\n        allowedWebsites: [x.com]\n        inject: {header: X, value: "{{secret}}"}\n        plainHttp: "yes"\n`;
    expect(() => parseBundleFile(bad, 'bad.yaml')).toThrow(/bad\.yaml:8: .*connections\[0\]\.plainHttp: expected boolean/);
    const typo = bad.replace('plainHttp: "yes"', 'plainHTTP: true');
    expect(() => parseBundleFile(typo, 'typo.yaml')).toThrow(/plainHTTP/);
  });

  it('property: over plain http a decision is the https one, except that a credential without the opt-in becomes blocked', () => {
    const conn = fc.record({
      website: fc.constantFrom('a.test', '*.a.test', 'b.a.test', '10.0.0.0/8', '10.1.2.3'),
      ports: fc.option(fc.subarray([80, 443, 8080], { minLength: 1 }), { nil: undefined }),
      prefix: fc.option(fc.constantFrom('/x/', '/'), { nil: undefined }),
      plainHttp: fc.option(fc.boolean(), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(conn, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('a.test', 'b.a.test', 'c.b.a.test', '10.1.2.3', '10.9.9.9', 'zz.test'),
        fc.constantFrom(80, 443, 8080),
        fc.constantFrom('/x/1', '/y', '/x/%2e%2e/y'),
        (conns, host, port, path) => {
          const bundles = conns.map((c, i) =>
            bundle(`b${i}`, [], [{ ...connection('c', [{ host: c.website, ...(c.ports ? { ports: c.ports } : {}) }], c.prefix ? { pathPrefix: c.prefix } : undefined), ...(c.plainHttp === undefined ? {} : { plainHttp: c.plainHttp }) }]),
          );
          let policy;
          try {
            policy = compilePolicy(bundles);
          } catch {
            return;
          }
          const tls = decide(policy, { method: 'GET', scheme: 'https', host, port, path });
          const plain = decide(policy, { method: 'GET', scheme: 'http', host, port, path });
          if (tls.outcome === 'credential' && conns[Number(tls.bundle!.slice(1))]!.plainHttp !== true) {
            expect(plain).toMatchObject({ outcome: 'blocked', bundle: tls.bundle, connection: tls.connection, host: tls.host });
            expect(plain.inject).toBeUndefined();
          } else {
            expect(plain).toEqual(tls);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});
