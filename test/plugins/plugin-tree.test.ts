import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkTree, modeOf, pathProblem, pluginNameProblem, PLUGIN_LIMITS, type PluginFile } from '../../src/plugins/plugin-tree.js';

const file = (path: string, data = 'x', mode: number = 0o644): PluginFile => ({ path, mode: mode as PluginFile['mode'], data: Buffer.from(data) });
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

// Path segments a plugin may have: anything but "", ".", "..", "/", "\", NUL and controls.
const segment = fc
  .string({ unit: fc.constantFrom(...[...'abcXYZ019-_.~ é😀']), minLength: 1, maxLength: 12 })
  .filter((s) => s !== '.' && s !== '..');

describe('pathProblem', () => {
  it.each([
    ['', 'an empty path'],
    ['/etc/passwd', 'an absolute path'],
    ['../x', 'a ".." segment'],
    ['a/../../x', 'a ".." segment'],
    ['a/..', 'a ".." segment'],
    ['./a', 'a "." segment'],
    ['a/./b', 'a "." segment'],
    ['a//b', 'an empty segment'],
    ['a/', 'an empty segment'],
    ['a\u0000b', 'NUL'],
    ['a\nb', 'a control character'],
    ['a\u007fb', 'a control character'],
    ['a\\..\\b', 'a backslash'],
    ['a\ud800b', 'not UTF-8'],
    [`${'a'.repeat(256)}`, 'longer than 255 bytes'],
    [`${'a/'.repeat(600)}a`, 'longer than 1024 bytes'],
  ])('%j is refused (%s)', (path, why) => {
    expect(pathProblem(path)).toContain(why);
  });

  it.each(['a', '.claude-plugin/plugin.json', 'skills/x y/SKILL.md', '.mcp.json', '..a', 'a..', '...', 'café/😀.md'])('%j is a plugin path', (path) => {
    expect(pathProblem(path)).toBeUndefined();
  });

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 1, {}, ['a']]) expect(pathProblem(v)).toBe('expected a path (text)');
  });

  it('accepts every path of plain segments, and each stays inside any root it is joined to', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 6 }), (segments) => {
        const path = segments.join('/');
        expect(pathProblem(path)).toBeUndefined();
        expect(posix.join('/cache/root', path).startsWith('/cache/root/')).toBe(true);
      }),
    );
  });

  it('refuses a ".." or empty segment wherever it is', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 4 }), fc.array(segment, { maxLength: 4 }), fc.constantFrom('..', '.', ''), (before, after, bad) => {
        expect(pathProblem([...before, bad, ...after].join('/'))).toBeDefined();
      }),
    );
  });

  it('never accepts a path that normalises outside its root or to a different path', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '.', '/', '\\', '\u0000', '\n'), maxLength: 12 }), (path) => {
        if (pathProblem(path) !== undefined) return;
        expect(posix.normalize(path)).toBe(path);
        expect(posix.join('/root', path).startsWith('/root/')).toBe(true);
      }),
    );
  });
});

describe('plugin names', () => {
  it.each(['a', 'review-kit', '0day', 'a'.repeat(63), 'a-'])('%j is a name', (name) => expect(pluginNameProblem(name)).toBeUndefined());
  it.each(['', '-a', 'A', 'a_b', 'a.b', 'a b', 'a'.repeat(64), '../x', 'é', 'a\n'])('%j is not', (name) => {
    expect(pluginNameProblem(name)).toContain('expected ^[a-z0-9][a-z0-9-]{0,62}$');
  });
});

describe('checkTree', () => {
  it('sorts by path, whatever order it was given in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 1 }).map((s) => `f/${s[0]}`), { minLength: 1, maxLength: 20 }), (paths) => {
        const sorted = checkTree(paths.map((p) => file(p))).map((f) => f.path);
        expect(checkTree([...paths].reverse().map((p) => file(p))).map((f) => f.path)).toEqual(sorted);
        expect([...sorted].sort()).toEqual(sorted);
      }),
    );
  });

  it('refuses a bad path, naming it', () => {
    expect(refusal(() => checkTree([file('ok'), file('../../x')]))).toBe('../../x: the path has a ".." segment');
    expect(refusal(() => checkTree([file('/etc/x')], (p) => `DIR/${p}`))).toBe('DIR//etc/x: an absolute path (expected a path relative to the plugin root)');
  });

  it('refuses a mode other than 0644 and 0755', () => {
    for (const mode of [0o4755, 0o777, 0o600, 0o2755, 0]) expect(refusal(() => checkTree([file('a', 'x', mode)]))).toContain('expected 0644 or 0755');
  });

  it('refuses a path given twice, and a file that is also a directory', () => {
    expect(refusal(() => checkTree([file('a'), file('a')]))).toBe('a: given twice');
    expect(refusal(() => checkTree([file('a/b/c'), file('a/b')]))).toBe('a/b: is a file and also the directory of a/b/c');
  });

  it(`refuses more than ${PLUGIN_LIMITS.maxFiles} files and more than 20 MiB`, () => {
    const many = Array.from({ length: PLUGIN_LIMITS.maxFiles + 1 }, (_, i) => file(`f${i}`));
    expect(refusal(() => checkTree(many))).toBe('plugin: 2001 files; a plugin has at most 2000');
    expect(checkTree(many.slice(1))).toHaveLength(PLUGIN_LIMITS.maxFiles);
    const big = Buffer.alloc(PLUGIN_LIMITS.maxBytes / 2);
    expect(checkTree([{ path: 'a', mode: 0o644, data: big }, { path: 'b', mode: 0o644, data: big }])).toHaveLength(2);
    expect(refusal(() => checkTree([{ path: 'a', mode: 0o644, data: big }, { path: 'b', mode: 0o644, data: Buffer.concat([big, Buffer.from('!')]) }]))).toBe(
      'b: the plugin is larger than 20 MiB in total',
    );
  });

  it('keeps only the executable bit of a mode', () => {
    expect(modeOf(0o100644)).toBe(0o644);
    expect(modeOf(0o100700)).toBe(0o755);
    expect(modeOf(0o100601)).toBe(0o755);
    expect(modeOf(0o104755)).toBe(0o755);
    expect(modeOf(0o100666)).toBe(0o644);
  });
});
