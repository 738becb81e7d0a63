import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchesPathPrefix, normalisePath, parsePathPrefix } from '../../src/policy/paths.js';

const prefixOf = (s: string) => {
  const r = parsePathPrefix(s);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};
const inside = (path: string, prefix: string) => matchesPathPrefix(normalisePath(path), prefixOf(prefix));

describe('normalisePath', () => {
  it.each([
    ['/', '/'],
    ['', '/'],
    ['/a/b?x=1', '/a/b'],
    ['/a/b#frag', '/a/b'],
    ['/a/b?x=/../..', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/../../a', '/a'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/%2E%2E/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/%7euser/%7E', '/~user/~'],
    ['/%41%62c', '/Abc'],
    ['/a%20b', '/a%20b'],
    ['/a%3ab', '/a%3Ab'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a//b', '/a//b'],
    ['/a/b/', '/a/b/'],
  ])('%j -> %j', (input, expected) => {
    const n = normalisePath(input);
    expect(n.path).toBe(expected);
  });

  it.each([
    ['/a%2Fb', 'encoded slash'],
    ['/a%2fb', 'encoded slash'],
    ['/a%5Cb', 'encoded slash or backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00b', 'NUL'],
    ['/a\u0000b', 'control'],
    ['/a%zzb', 'invalid percent-encoding'],
    ['/a%2', 'invalid percent-encoding'],
    ['/a%', 'invalid percent-encoding'],
    ['/a%252e%252e/b', 'double percent-encoding'],
    ['/a/..;/b', 'dot-segment with parameters'],
    ['/a/.;x/b', 'dot-segment with parameters'],
    ['/a//../b', 'empty segment'],
    ['/a b', 'space'],
    ['/café', 'non-ASCII'],
    ['/%c0%ae%c0%ae/', 'overlong'],
    ['a/b', 'not absolute'],
    ['*', 'not absolute'],
  ])('%j is unsafe (%s)', (input, why) => {
    expect(normalisePath(input).unsafe).toContain(why);
  });

  it('property: the plain-path fast path agrees with full normalisation', () => {
    fc.assert(
      fc.property(fc.webPath(), (p) => {
        if (!p.startsWith('/')) return;
        // A leading "/." forces the full path; it resolves away to the same result.
        expect(normalisePath(`/.${p}`)).toEqual(normalisePath(p));
      }),
      { numRuns: 3000 },
    );
  });

  it('property: normalising twice equals normalising once', () => {
    const chars = fc.constantFrom('a', 'B', '/', '.', '%', '2', 'e', 'E', 'f', 'F', '5', 'c', '~', '-', ';', '?', '#', '\\', ' ', '0');
    const paths = fc.array(chars, { maxLength: 30 }).map((cs) => `/${cs.join('')}`);
    fc.assert(
      fc.property(fc.oneof(paths, fc.webPath(), fc.string()), (p) => {
        const once = normalisePath(p).path;
        expect(normalisePath(once).path).toBe(once);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('path prefixes', () => {
  it.each([
    // path, prefix, matches
    ['/repos/acme/x', '/repos/acme/', true],
    ['/repos/acme/', '/repos/acme/', true],
    ['/repos/acme', '/repos/acme/', false],
    ['/repos/acme-evil/x', '/repos/acme/', false],
    ['/repos/acme/../other', '/repos/acme/', false],
    ['/repos/acme/%2e%2e/other', '/repos/acme/', false],
    ['/repos/acme/%2E%2E/other', '/repos/acme/', false],
    ['/repos/acme/.%2e/other', '/repos/acme/', false],
    ['/repos/acme/x/../y', '/repos/acme/', true],
    ['/repos/acme/./x', '/repos/acme/', true],
    ['/repos/acme%2Fx', '/repos/acme/', false],
    ['/repos/acme/x%2F..%2F..%2Fother', '/repos/acme/', false],
    ['/repos/acme/x%5C..%5Cother', '/repos/acme/', false],
    ['/repos/acme/x\\..\\other', '/repos/acme/', false],
    ['/repos/acme/x%00', '/repos/acme/', false],
    ['/repos/acme/..;/other', '/repos/acme/', false],
    ['/repos/acme//../other', '/repos/acme/', false],
    ['/Repos/acme/x', '/repos/acme/', false],
    ['/repos/ACME/x', '/repos/acme/', false],
    ['/repos/%61cme/x', '/repos/acme/', true],
    ['/repos/acme/x?a=/../../other', '/repos/acme/', true],
    ['/repos/acme', '/repos/acme', true],
    ['/repos/acme/x', '/repos/acme', true],
    ['/repos/acme-evil', '/repos/acme', false],
    ['/repos/acmex', '/repos/acme', false],
    ['/repos/acme/../acme-evil', '/repos/acme', false],
    ['/anything', '/', true],
    ['/a%2Fb', '/', false], // unsafe paths never match a prefix, even "/"
  ])('%j under %j -> %s', (path, prefix, expected) => {
    expect(inside(path, prefix)).toBe(expected);
  });

  it.each([
    ['repos/acme', 'start with "/"'],
    ['/repos?x', 'query'],
    ['/repos#x', 'fragment'],
    ['/repos/../x', '".." segments'],
    ['/repos/%2e%2e/x', '".." segments'],
    ['/repos/./x', '"." or ".."'],
    ['/repos%2Facme', 'encoded slash'],
    ['/repos\\acme', 'backslash'],
  ])('rejects prefix %j (%s)', (prefix, message) => {
    const r = parsePathPrefix(prefix);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });

  it('normalises prefixes like paths', () => {
    expect(prefixOf('/repos/%61cme/')).toBe('/repos/acme/');
    expect(prefixOf('/a%3ab')).toBe('/a%3Ab');
  });

  it('property: a path that matches a prefix never escapes the prefix segment', () => {
    const seg = fc.constantFrom('acme', 'acme-evil', 'other', '..', '.', '%2e%2e', '%2E.', '', 'x;y', '..;', '%2F', '%5C', 'a%20b', '%61cme');
    const prefixes = fc.constantFrom('/repos/acme/', '/repos/acme', '/repos/');
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 8 }), prefixes, (segs, prefix) => {
        const raw = `/repos/${segs.join('/')}`;
        const n = normalisePath(raw);
        if (!matchesPathPrefix(n, prefix)) return;
        // Independent check: resolve the segments the way RFC 3986 does and
        // confirm the result is inside the prefix at a segment boundary.
        expect(n.unsafe).toBeUndefined();
        const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
        expect(n.path === prefix || n.path.startsWith(base)).toBe(true);
        expect(n.path.split('/').some((s) => s === '..' || s === '.')).toBe(false);
      }),
      { numRuns: 5000 },
    );
  });
});
