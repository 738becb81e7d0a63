import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBundleFile } from '../../src/policy/bundle-file.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide, decideTunnel, normaliseRequest } from '../../src/policy/decide.js';
import { hostMatches, normaliseHost, parseHostPattern } from '../../src/policy/hosts.js';
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
    ['api.github.com', '/repos/acme/x', 'GET', 80, 'credential'],
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
