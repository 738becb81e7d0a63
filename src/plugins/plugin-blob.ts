/**
 * The stored form of a plugin: one deterministic encoding of its file tree,
 * never an archive format whose extraction could make links, devices or
 * paths outside the root. The canonical encoding is JSON
 *   {"format":1,"files":[{"path":"...","mode":420|493,"data":"<base64>"}, ...]}
 * with files sorted by path; the digest is the sha256 of those bytes, so the
 * same tree always has the same digest (mtimes, owners and readdir order are
 * not in it) whatever compressor stored it. The database holds it gzipped.
 *
 * Decoding treats the stored row as hostile: the gunzip is capped, the hash
 * must match the digest, and the tree is checked again (paths, modes, sizes,
 * counts) before anyone writes a byte of it.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { failure } from '../errors.js';
import { checkTree, PLUGIN_LIMITS, type PluginFile } from './plugin-tree.js';

export const BLOB_FORMAT = 1;
export const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

/**
 * The largest canonical encoding a valid plugin can have: base64 of every byte,
 * plus each file's JSON around it (a path escapes to at most twice its bytes:
 * control characters are refused, so only `"` and `\` are escaped).
 */
export const MAX_CANONICAL_BYTES = Math.ceil((PLUGIN_LIMITS.maxBytes * 4) / 3) + PLUGIN_LIMITS.maxFiles * (PLUGIN_LIMITS.maxPathBytes * 2 + 64) + 64;

export interface EncodedPlugin {
  /** sha256 hex of the canonical encoding. */
  digest: string;
  /** base64 of gzip of the canonical encoding (text, as both dialects store it). */
  data: string;
  /** Bytes of the canonical encoding. */
  size: number;
}

/** The canonical bytes of an already checked, sorted tree. */
export function canonicalEncoding(files: readonly PluginFile[]): Buffer {
  const body = { format: BLOB_FORMAT, files: files.map((f) => ({ path: f.path, mode: f.mode, data: f.data.toString('base64') })) };
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function encodePlugin(files: readonly PluginFile[]): EncodedPlugin {
  const canonical = canonicalEncoding(checkTree(files));
  return { digest: sha256Hex(canonical), data: gzipSync(canonical, { level: 9 }).toString('base64'), size: canonical.length };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const storedSchema = z.strictObject({
  format: z.literal(BLOB_FORMAT),
  files: z
    .array(
      z.strictObject({
        path: z.string(),
        mode: z.union([z.literal(0o644), z.literal(0o755)]),
        data: z.string().regex(BASE64, 'expected base64'),
      }),
    )
    .max(PLUGIN_LIMITS.maxFiles, `a plugin has at most ${PLUGIN_LIMITS.maxFiles} files`),
});

/**
 * A stored blob back to its tree, or a failure naming the plugin (`where`,
 * e.g. `plugin "review"`). Never returns anything it has not fully checked.
 */
export function decodePlugin(stored: { digest: string; data: string }, where: string): PluginFile[] {
  const refuse = (why: string) => failure(`${where}: stored blob refused: ${why}; add the plugin again`, 'plugin_blob_invalid');
  if (!DIGEST_PATTERN.test(stored.digest)) throw refuse(`its digest ${JSON.stringify(stored.digest.slice(0, 80))} is not a sha256 hex digest`);
  let canonical: Buffer;
  try {
    canonical = gunzipSync(Buffer.from(stored.data, 'base64'), { maxOutputLength: MAX_CANONICAL_BYTES });
  } catch (error) {
    throw refuse(error instanceof RangeError ? `it is larger than ${MAX_CANONICAL_BYTES} bytes` : 'it is not gzip data');
  }
  if (sha256Hex(canonical) !== stored.digest) throw refuse(`its bytes do not match its digest sha256:${stored.digest.slice(0, 12)}… (tampered or corrupt)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(canonical.toString('utf8'));
  } catch {
    throw refuse('it is not the canonical JSON encoding');
  }
  const checked = storedSchema.safeParse(parsed);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw refuse(`${['blob', ...issue.path.map(String)].join('.')}: ${issue.message}`);
  }
  const files = checked.data.files.map((f) => ({ path: f.path, mode: f.mode, data: Buffer.from(f.data, 'base64') }));
  try {
    return checkTree(files, (p) => JSON.stringify(p), 'blob');
  } catch (error) {
    throw refuse((error as Error).message);
  }
}
