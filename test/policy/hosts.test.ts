import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostMatches, normaliseHost, parseHostPattern, patternCovers, type HostPattern } from '../../src/policy/hosts.js';

const norm = (s: string) => {
  const r = normaliseHost(s);
  return r.ok ? r.value.host : `ERR: ${r.error}`;
};
const pat = (s: string): HostPattern => {
  const r = parseHostPattern(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const matches = (pattern: string, host: string) => {
  const h = normaliseHost(host);
  return h.ok && hostMatches(pat(pattern), h.value);
};

const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => `${ls.join('.')}.test`);

describe('normaliseHost', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['EXAMPLE.com.', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['BÜCHER.example.', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['XN--BCHER-KVA.example', 'xn--bcher-kva.example'],
    ['ß.de', 'xn--zca.de'],
    ['ex\u00adample.com', 'example.com'], // soft hyphen is ignored by IDNA, as every client does
    ['a_b.example', 'a_b.example'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['１２７.０.０.１', '127.0.0.1'], // full-width digits map to an IPv4 literal
    ['[::1]', '::1'],
    ['::1', '::1'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[2001:DB8::1]', '2001:db8::1'],
  ])('%s -> %s', (input, expected) => {
    expect(norm(input)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    ['.', 'empty'],
    ['example.com..', 'empty label'],
    ['a..b', 'empty label'],
    ['.example.com', 'empty label'],
    ['example.com:443', 'port'],
    ['user@example.com', 'invalid character'],
    ['example.com/path', 'invalid character'],
    ['exa mple.com', 'invalid character'],
    ['%65xample.com', 'percent'],
    ['exa\\mple.com', 'invalid character'],
    ['*.example.com', 'invalid character'],
    ['xn--zz.com', 'not a valid'],
    ['1.2.3.4.5', 'ends in a number'],
    ['example.0x1', 'ends in a number'],
    ['example.123', 'ends in a number'],
    ['256.0.0.1', 'ends in a number'],
    ['[fe80::1%25eth0]', 'zone'],
    ['fe80::1%eth0', 'zone'],
    ['[::1', 'brackets'],
    ['a'.repeat(64) + '.com', 'invalid label'],
    [`${'a.'.repeat(127)}com`, 'longer than 253'],
  ])('rejects %j (%s)', (input, message) => {
    expect(norm(input)).toMatch(new RegExp(`^ERR: .*${message}`));
  });

  it('property: normalising twice equals normalising once', () => {
    const anyHost = fc.oneof(
      domain,
      domain.map((d) => d.toUpperCase()),
      domain.map((d) => `${d}.`),
      fc.string({ maxLength: 20 }),
      fc.ipV4().map((ip) => ip),
      fc.ipV4Extended(),
      fc.ipV6().map((ip) => `[${ip}]`),
      fc.domain(),
    );
    fc.assert(
      fc.property(anyHost, (h) => {
        const once = normaliseHost(h);
        if (!once.ok) return;
        const twice = normaliseHost(once.value.host);
        expect(twice.ok && twice.value.host).toBe(once.value.host);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: the plain-name fast path agrees with full IDNA processing', () => {
    fc.assert(
      fc.property(fc.oneof(domain, fc.domain()), (h) => {
        const fast = normaliseHost(h);
        const slow = normaliseHost(h.toUpperCase()); // upper case forces the UTS #46 path
        expect(slow).toEqual(fast);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: every inet_aton-style IPv4 normalises to the same address as its dotted form', () => {
    fc.assert(
      fc.property(fc.ipV4Extended(), (h) => {
        const r = normaliseHost(h);
        expect(r.ok).toBe(true);
      }),
    );
  });
});

describe('host patterns', () => {
  it.each([
    ['example.com', 'exact', 'example.com'],
    ['Example.COM.', 'exact', 'example.com'],
    ['*.Example.com', 'wildcard', '*.example.com'],
    ['*.bücher.example', 'wildcard', '*.xn--bcher-kva.example'],
    ['10.0.0.1', 'ip', '10.0.0.1'],
    ['10.0.0.1/32', 'ip', '10.0.0.1'],
    ['10.0.0.0/8', 'cidr', '10.0.0.0/8'],
    ['::1', 'ip', '::1'],
    ['[::1]', 'ip', '::1'],
    ['::ffff:10.0.0.1', 'ip', '10.0.0.1'],
    ['fd00::/8', 'cidr', 'fd00::/8'],
  ])('%s is %s %s', (input, kind, text) => {
    const p = pat(input);
    expect(p.kind).toBe(kind);
    expect(p.text).toBe(text);
  });

  it.each([
    ['*', '"*" alone'],
    ['', 'empty'],
    ['https://example.com', 'without a scheme'],
    ['http://example.com/x', 'without a scheme'],
    ['example.com/path', 'paths are not allowed'],
    ['user@example.com', 'user-info'],
    ['user:pw@example.com', 'user-info'],
    ['example.com:443', 'a port does not belong'],
    ['[::1]:443', 'a port does not belong'],
    ['10.0.0.1:80', 'a port does not belong'],
    ['*example.com', 'whole first label'],
    ['a.*.example.com', 'whole first label'],
    ['*.*.example.com', 'whole first label'],
    ['ex*ample.com', 'whole first label'],
    ['*.10.0.0.1', 'cannot cover an IP'],
    ['010.0.0.1', 'dotted decimal'],
    ['0x7f.1', 'dotted decimal'],
    ['2130706433', 'dotted decimal'],
    ['10.0.0.1/8', 'did you mean 10.0.0.0/8'],
    [' example.com', 'whitespace'],
    ['fe80::1%eth0', 'zone'],
    ['exa_mple..com', 'empty label'],
  ])('rejects %j (%s)', (input, message) => {
    const r = parseHostPattern(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it.each([
    // pattern, host, matches
    ['example.com', 'example.com', true],
    ['example.com', 'EXAMPLE.COM.', true],
    ['example.com', 'www.example.com', false],
    ['example.com', 'evil-example.com', false],
    ['example.com', 'xexample.com', false],
    ['example.com', 'example.com.evil.test', false],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.c.example.com', true],
    ['*.example.com', 'A.Example.Com.', true],
    ['*.example.com', 'evil-example.com', false],
    ['*.example.com', 'xexample.com', false],
    ['*.example.com', 'example.com.evil.test', false],
    ['*.example.com', 'a.example.com.evil.test', false],
    ['bücher.example', 'xn--bcher-kva.example', true],
    ['xn--bcher-kva.example', 'BÜCHER.example', true],
    ['*.bücher.example', 'shop.xn--bcher-kva.example', true],
    ['10.0.0.1', '10.0.0.1', true],
    ['10.0.0.1', '0x0a.1', true],
    ['10.0.0.1', '167772161', true],
    ['10.0.0.1', '::ffff:10.0.0.1', true],
    ['10.0.0.0/8', '10.200.0.1', true],
    ['10.0.0.0/8', '012.0.0.1', true], // octal 012 = 10
    ['10.0.0.0/8', '11.0.0.1', false],
    ['::1', '[::1]', true],
    ['::1', '0:0:0:0:0:0:0:1', true],
    ['fd00::/8', '[fd12::1]', true],
    ['*.example.com', '10.0.0.1', false],
    ['10.0.0.0/8', 'ten.example.com', false],
  ])('%s vs %s -> %s', (pattern, host, expected) => {
    expect(matches(pattern, host)).toBe(expected);
  });

  it('coverage between patterns', () => {
    expect(patternCovers(pat('*.github.com'), pat('api.github.com'))).toBe(true);
    expect(patternCovers(pat('*.github.com'), pat('github.com'))).toBe(false);
    expect(patternCovers(pat('*.github.com'), pat('*.api.github.com'))).toBe(true);
    expect(patternCovers(pat('*.api.github.com'), pat('*.github.com'))).toBe(false);
    expect(patternCovers(pat('api.github.com'), pat('api.github.com'))).toBe(true);
    expect(patternCovers(pat('10.0.0.0/8'), pat('10.1.2.3'))).toBe(true);
    expect(patternCovers(pat('10.0.0.0/8'), pat('10.1.0.0/16'))).toBe(true);
    expect(patternCovers(pat('10.1.2.3'), pat('10.0.0.0/8'))).toBe(false);
  });

  it('property: any host accepted by *.example.com ends with .example.com', () => {
    const p = pat('*.example.com');
    const candidates = fc.oneof(
      domain,
      domain.map((d) => `${d.replace(/\.test$/, '')}.example.com`),
      domain.map((d) => `${d.replace(/\.test$/, '')}example.com`),
      domain.map((d) => `example.com.${d}`),
      fc.string({ maxLength: 30 }).map((s) => `${s}example.com`),
      fc.string({ maxLength: 30 }).map((s) => `${s}.EXAMPLE.COM.`),
    );
    fc.assert(
      fc.property(candidates, (host) => {
        const h = normaliseHost(host);
        if (h.ok && hostMatches(p, h.value)) {
          expect(h.value.host.endsWith('.example.com')).toBe(true);
          expect(h.value.host).not.toBe('example.com');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: an exact pattern matches only its own normal form', () => {
    fc.assert(
      fc.property(domain, domain, (a, b) => {
        const ha = normaliseHost(b);
        if (!ha.ok) return;
        expect(hostMatches(pat(a), ha.value)).toBe(a === ha.value.host);
      }),
    );
  });
});
