import { describe, expect, it } from 'vitest';
import { TagboxError } from '../../src/errors.js';
import { compilePolicy, mergeBundles } from '../../src/policy/compile.js';
import { decide } from '../../src/policy/decide.js';
import { parseIpLiteral } from '../../src/policy/ip.js';
import { bundle, connection, req } from './fixtures.js';

function compileError(fn: () => unknown): TagboxError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TagboxError);
    expect((error as TagboxError).exitCode).toBe(2);
    return error as TagboxError;
  }
  throw new Error('expected an error');
}

describe('compilePolicy', () => {
  it('collects IP and CIDR entries for the SSRF guard', () => {
    const p = compilePolicy([bundle('a', ['10.0.0.0/8', 'x.com', '::1'], [connection('c', ['192.168.1.1'])])]);
    expect(p.addresses.size).toBe(3);
    expect(p.addresses.match(parseIpLiteral('10.9.9.9')!)?.entry).toBe('10.0.0.0/8');
    expect(p.addresses.match(parseIpLiteral('192.168.1.1')!)).toEqual({ entry: '192.168.1.1', exact: true });
  });

  it('rejects two equally specific connections, naming both', () => {
    const e = compileError(() =>
      compilePolicy([bundle('one', [], [connection('github', ['api.github.com'])]), bundle('two', [], [connection('gh', ['API.github.com.'])])]),
    );
    expect(e.message).toMatch(/ambiguous connections: one\/github and two\/gh both match api\.github\.com with no path prefix/);
  });

  it.each([
    ['same wildcard', ['*.github.com'], ['*.github.com'], undefined, undefined],
    ['same prefix', ['api.github.com'], ['api.github.com'], { pathPrefix: '/repos/' }, { pathPrefix: '/repos/' }],
    ['same prefix after normalisation', ['api.github.com'], ['api.github.com'], { pathPrefix: '/repos/' }, { pathPrefix: '/%72epos/' }],
    ['read-only vs read-write overlap on GET', ['api.github.com'], ['api.github.com'], { readOnly: true }, undefined],
    ['narrow.host equal to the other website', ['*.github.com'], ['api.github.com'], { host: 'api.github.com' }, undefined],
    ['same CIDR', ['10.0.0.0/8'], ['10.0.0.0/8'], undefined, undefined],
    ['IP and /32', ['10.0.0.1'], ['10.0.0.1/32'], undefined, undefined],
    ['overlapping ports', [{ host: 'x.com', ports: [443, 8443] }], [{ host: 'x.com', ports: [8443] }], undefined, undefined],
  ] as const)('ambiguity: %s', (_n, a, b, na, nb) => {
    expect(() =>
      compilePolicy([bundle('b', [], [connection('a', [...a], na && { ...na }), connection('b', [...b], nb && { ...nb })])]),
    ).toThrow(/ambiguous connections: b\/a and b\/b/);
  });

  it.each([
    ['exact vs wildcard', ['api.github.com'], ['*.github.com'], undefined, undefined],
    ['different prefixes', ['api.github.com'], ['api.github.com'], { pathPrefix: '/repos/a/' }, { pathPrefix: '/repos/' }],
    ['prefix vs none', ['api.github.com'], ['api.github.com'], { pathPrefix: '/repos/' }, undefined],
    ['"/" vs none', ['api.github.com'], ['api.github.com'], { pathPrefix: '/' }, undefined],
    ['deeper wildcard', ['*.api.github.com'], ['*.github.com'], undefined, undefined],
    ['disjoint ports', [{ host: 'x.com', ports: [8443] }], ['x.com'], undefined, undefined],
    ['nested CIDRs', ['10.0.0.0/8'], ['10.1.0.0/16'], undefined, undefined],
  ] as const)('no ambiguity: %s', (_n, a, b, na, nb) => {
    expect(() => compilePolicy([bundle('b', [], [connection('a', [...a], na && { ...na }), connection('b', [...b], nb && { ...nb })])])).not.toThrow();
  });

  it('a connection never clashes with itself', () => {
    expect(() => compilePolicy([bundle('b', [], [connection('a', ['x.com', 'X.com.', '*.x.com'], { host: 'a.x.com' })])])).not.toThrow();
  });

  it('rejects bad data that did not come through the schema', () => {
    expect(compileError(() => compilePolicy([bundle('b', ['*'])])).message).toMatch(/bundle "b": domains\[0\]: "\*" alone/);
    expect(compileError(() => compilePolicy([bundle('b'), bundle('b')])).message).toMatch(/bundle "b" is defined twice/);
    expect(compileError(() => compilePolicy([bundle('b', [], [connection('c', ['x.com'], { host: 'y.com' })])])).message).toMatch(
      /bundle "b", connection "c": narrow\.host/,
    );
    expect(compileError(() => compilePolicy([bundle('b', [], [connection('c', ['x.com'], { pathPrefix: 'x' })])])).message).toMatch(/narrow\.pathPrefix/);
  });

  it('compiles 10,000 bundles and still decides correctly', () => {
    const bundles = Array.from({ length: 10_000 }, (_, i) =>
      bundle(`team-${i}`, [`svc-${i}.example.com`, `*.cdn-${i}.example.net`, { host: `api-${i}.example.org`, ports: [8443] }], [
        connection('api', [`api-${i}.example.com`], { pathPrefix: `/orgs/team-${i}/`, readOnly: i % 2 === 0 }),
      ]),
    );
    const p = compilePolicy(bundles);
    expect(p.bundles).toHaveLength(10_000);
    expect(p.credentials.size).toBe(10_000);
    expect(decide(p, req('api-9999.example.com', '/orgs/team-9999/x', 'POST')).outcome).toBe('credential');
    expect(decide(p, req('api-9998.example.com', '/orgs/team-9998/x', 'POST')).outcome).toBe('allowlist');
    expect(decide(p, req('a.b.cdn-5000.example.net')).bundle).toBe('team-5000');
    expect(decide(p, req('api-1.example.org', '/', 'GET', 8443)).outcome).toBe('allowlist');
    expect(decide(p, req('api-1.example.org')).outcome).toBe('blocked');
    expect(decide(p, req('svc-10000.example.com')).outcome).toBe('blocked');
  });
});

describe('mergeBundles', () => {
  it('unions scopes, keeping a bundle attached twice once', () => {
    const shared = bundle('shared', ['x.com']);
    const merged = mergeBundles([shared, bundle('org', ['o.com'])], [bundle('chan', ['c.com']), { ...shared }]);
    expect(merged.map((b) => b.name)).toEqual(['shared', 'org', 'chan']);
    const p = compilePolicy(merged);
    expect(decide(p, req('c.com')).bundle).toBe('chan');
  });

  it('refuses two different bundles with the same name', () => {
    expect(() => mergeBundles([bundle('a', ['x.com'])], [bundle('a', ['y.com'])])).toThrow(/bundle "a" is defined twice with different contents/);
  });

  it('ambiguity across scopes is an error naming both', () => {
    const merged = mergeBundles([bundle('org', [], [connection('gh', ['api.github.com'])])], [bundle('chan', [], [connection('gh', ['api.github.com'])])]);
    expect(() => compilePolicy(merged)).toThrow(/org\/gh and chan\/gh/);
  });
});
