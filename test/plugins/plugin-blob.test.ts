import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEncoding, decodePlugin, encodePlugin, MAX_CANONICAL_BYTES, sha256Hex } from '../../src/plugins/plugin-blob.js';
import type { PluginFile } from '../../src/plugins/plugin-tree.js';
import { filesOf, SAMPLE } from './fixtures.js';

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

/** What an attacker with write access to the database stores: any JSON, with a digest that matches it. */
function forged(body: unknown): { digest: string; data: string } {
  const canonical = Buffer.from(JSON.stringify(body));
  return { digest: sha256Hex(canonical), data: gzipSync(canonical).toString('base64') };
}

const tree = fc.uniqueArray(
  fc.record({
    path: fc.array(fc.stringMatching(/^[a-z0-9._-]{1,8}$/).filter((s) => s !== '.' && s !== '..'), { minLength: 1, maxLength: 3 }).map((s) => `d/${s.join('/')}`),
    mode: fc.constantFrom(0o644 as const, 0o755 as const),
    data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  }),
  { selector: (f) => f.path, minLength: 1, maxLength: 12 },
).filter((files) => !files.some((a) => files.some((b) => b.path.startsWith(`${a.path}/`))));

describe('the stored encoding', () => {
  it('round-trips any tree, and its digest depends on content only, not on the order files came in', () => {
    fc.assert(
      fc.property(tree, (files) => {
        const encoded = encodePlugin(files);
        expect(encodePlugin([...files].reverse()).digest).toBe(encoded.digest);
        const back = decodePlugin(encoded, 'plugin "t"');
        expect(back.map((f) => [f.path, f.mode, f.data.toString('hex')])).toEqual(
          [...files].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => [f.path, f.mode, f.data.toString('hex')]),
        );
        expect(encoded.size).toBe(canonicalEncoding(back).length);
      }),
    );
  });

  it('has a different digest when a byte, a mode or a path changes', () => {
    const base = filesOf(SAMPLE);
    const digest = encodePlugin(base).digest;
    const changed = (f: (files: PluginFile[]) => void) => {
      const copy = base.map((x) => ({ ...x, data: Buffer.from(x.data) }));
      f(copy);
      return encodePlugin(copy).digest;
    };
    expect(changed((fs) => fs[0]!.data.writeUInt8(fs[0]!.data.readUInt8(0) ^ 1, 0))).not.toBe(digest);
    expect(changed((fs) => (fs[0]!.mode = 0o755))).not.toBe(digest);
    expect(changed((fs) => (fs[1]!.path = 'renamed.md'))).not.toBe(digest);
  });

  it('is a JSON document with a format version, sorted by path', () => {
    const encoded = encodePlugin(filesOf(SAMPLE));
    const canonical = gunzipSync(Buffer.from(encoded.data, 'base64'));
    expect(sha256Hex(canonical)).toBe(encoded.digest);
    const parsed = JSON.parse(canonical.toString());
    expect(parsed.format).toBe(1);
    expect(parsed.files.map((f: { path: string }) => f.path)).toEqual(Object.keys(SAMPLE).sort());
  });
});

describe('a stored blob treated as hostile', () => {
  const good = encodePlugin(filesOf(SAMPLE));

  it('is refused when its bytes changed (the digest no longer matches)', () => {
    const raw = Buffer.from(good.data, 'base64');
    raw.writeUInt8(raw.readUInt8(raw.length - 9) ^ 0xff, raw.length - 9); // inside the gzip trailer's CRC: gunzip itself refuses
    expect(refusal(() => decodePlugin({ digest: good.digest, data: raw.toString('base64') }, 'plugin "kit"'))).toBe(
      'plugin "kit": stored blob refused: it is not gzip data; add the plugin again',
    );
    const other = encodePlugin([...filesOf(SAMPLE), { path: 'extra', mode: 0o644, data: Buffer.from('x') }]);
    expect(refusal(() => decodePlugin({ digest: good.digest, data: other.data }, 'plugin "kit"'))).toBe(
      `plugin "kit": stored blob refused: its bytes do not match its digest sha256:${good.digest.slice(0, 12)}… (tampered or corrupt); add the plugin again`,
    );
  });

  it('is refused when its digest is not a digest (it is used as a directory name)', () => {
    for (const digest of ['../../etc', `${good.digest}/..`, good.digest.toUpperCase(), '', 'x'.repeat(64)]) {
      expect(refusal(() => decodePlugin({ digest, data: good.data }, 'plugin "kit"'))).toContain('is not a sha256 hex digest');
    }
  });

  it.each([
    ['a path with ..', { format: 1, files: [{ path: '../../x', mode: 420, data: 'eA==' }] }, '"../../x": the path has a ".." segment'],
    ['an absolute path', { format: 1, files: [{ path: '/etc/x', mode: 420, data: 'eA==' }] }, '"/etc/x": an absolute path'],
    ['a NUL', { format: 1, files: [{ path: 'a\u0000b', mode: 420, data: 'eA==' }] }, 'contains NUL'],
    ['a setuid mode', { format: 1, files: [{ path: 'a', mode: 0o4755, data: 'eA==' }] }, 'blob.files.0.mode'],
    ['a duplicate path', { format: 1, files: [{ path: 'a', mode: 420, data: '' }, { path: 'a', mode: 420, data: '' }] }, '"a": given twice'],
    ['a file under a file', { format: 1, files: [{ path: 'a', mode: 420, data: '' }, { path: 'a/b', mode: 420, data: '' }] }, 'is a file and also the directory'],
    ['an unknown format', { format: 2, files: [] }, 'blob.format'],
    ['extra fields', { format: 1, files: [{ path: 'a', mode: 420, data: '', link: '/etc' }] }, 'blob.files.0'],
    ['data that is not base64', { format: 1, files: [{ path: 'a', mode: 420, data: '!!' }] }, 'expected base64'],
    ['a huge file count', { format: 1, files: Array.from({ length: 5000 }, (_, i) => ({ path: `f${i}`, mode: 420, data: '' })) }, 'at most 2000 files'],
  ])('is refused with %s, even when its digest matches', (_what, body, message) => {
    const error = refusal(() => decodePlugin(forged(body), 'plugin "kit"'));
    expect(error).toContain('plugin "kit": stored blob refused: ');
    expect(error).toContain(message);
  });

  it('is refused when it would inflate beyond any valid plugin (a gzip bomb)', () => {
    const bomb = gzipSync(Buffer.alloc(MAX_CANONICAL_BYTES + 1024, 0x20));
    expect(bomb.length).toBeLessThan(200_000);
    expect(refusal(() => decodePlugin({ digest: 'a'.repeat(64), data: bomb.toString('base64') }, 'plugin "kit"'))).toContain(`it is larger than ${MAX_CANONICAL_BYTES} bytes`);
  });

  it('is refused when it is not JSON', () => {
    const canonical = Buffer.from('{"format":1,');
    expect(refusal(() => decodePlugin({ digest: sha256Hex(canonical), data: gzipSync(canonical).toString('base64') }, 'plugin "kit"'))).toContain('not the canonical JSON encoding');
  });
});
