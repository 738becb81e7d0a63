/**
 * The host-side cache of extracted plugins: `cacheDir/<digest>/plugin/` (what
 * a sandbox mounts read-only) and `cacheDir/<digest>/complete` (the marker,
 * outside the plugin's own tree so that no plugin file can pose as it).
 *
 * Extraction is atomic: into a fresh temporary directory of cacheDir, files
 * created with O_EXCL | O_NOFOLLOW (nothing in it can be a link: we made every
 * entry), synced, the marker written last, then one rename into place. A
 * directory at the final name without a valid marker (a crash, a meddler) is
 * moved aside and redone. Directories are 0755 and files 0644 or 0755 whatever
 * the umask, so that a sandbox running as another uid can read them.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { failure } from '../errors.js';
import { DIGEST_PATTERN } from './plugin-blob.js';
import { checkTree, type PluginFile } from './plugin-tree.js';

export const PLUGIN_ROOT = 'plugin';
export const COMPLETE_MARKER = 'complete';

const inFlight = new Map<string, Promise<string>>();

/**
 * The host directory of the plugin with this digest, extracted if it is not
 * already (`load` is called only then; it must return verified files).
 * `where` names the plugin in errors.
 */
export function ensureExtracted(cacheDir: string, digest: string, load: () => Promise<PluginFile[]>, where: string): Promise<string> {
  if (!DIGEST_PATTERN.test(digest)) return Promise.reject(failure(`${where}: stored digest ${JSON.stringify(digest.slice(0, 80))} refused: not a sha256 hex digest`, 'plugin_blob_invalid'));
  const final = join(resolve(cacheDir), digest);
  // One extraction per digest at a time in this process; other processes race safely through rename.
  let pending = inFlight.get(final);
  if (!pending) {
    pending = extract(resolve(cacheDir), digest, load, where).finally(() => inFlight.delete(final));
    inFlight.set(final, pending);
  }
  return pending;
}

async function extract(cache: string, digest: string, load: () => Promise<PluginFile[]>, where: string): Promise<string> {
  const final = join(cache, digest);
  if (await isComplete(final, digest)) return join(final, PLUGIN_ROOT);
  const files = checkTree(await load(), (p) => JSON.stringify(p), where);
  await makeCacheDir(cache);
  const tmp = await mkdtemp(join(cache, `.tmp-${digest.slice(0, 12)}-`));
  try {
    await writeTree(join(tmp, PLUGIN_ROOT), files);
    await writeFileExclusive(join(tmp, COMPLETE_MARKER), Buffer.from(`${digest}\n`), 0o644);
    await chmod(tmp, 0o755);
    await syncDir(tmp);
    await install(cache, tmp, final, digest);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return join(final, PLUGIN_ROOT);
}

/** cacheDir and any parents this call creates are 0755 whatever the umask (the sandbox's uid must traverse them). */
async function makeCacheDir(cache: string): Promise<void> {
  const first = await mkdir(cache, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let dir = cache; dir.length >= first.length; dir = dirname(dir)) await chmod(dir, 0o755);
}

/** Renames tmp into place; an incomplete directory there is moved aside first; a complete one (a racing process) wins. */
async function install(cache: string, tmp: string, final: string, digest: string): Promise<void> {
  try {
    await rename(tmp, final);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
    if (await isComplete(final, digest)) {
      await rm(tmp, { recursive: true, force: true });
      return;
    }
    const trash = join(cache, `.trash-${digest.slice(0, 12)}-${randomBytes(6).toString('hex')}`);
    await rename(final, trash);
    await rename(tmp, final);
    await rm(trash, { recursive: true, force: true });
  }
  await syncDir(cache);
}

/** Trusted only as a real directory with the plugin's root directory and a marker naming this digest. */
export async function isComplete(final: string, digest: string): Promise<boolean> {
  try {
    if (!(await lstat(final)).isDirectory()) return false;
    if (!(await lstat(join(final, PLUGIN_ROOT))).isDirectory()) return false;
    const handle = await open(join(final, COMPLETE_MARKER), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(128);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8') === `${digest}\n`;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

async function writeTree(root: string, files: PluginFile[]): Promise<void> {
  await mkdir(root, { mode: 0o755 });
  await chmod(root, 0o755);
  const made = new Set<string>(['']);
  for (const file of files) {
    const segments = file.path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (made.has(dir)) continue;
      // Not recursive: fails (EEXIST) rather than pass through anything that is already there.
      await mkdir(join(root, dir), { mode: 0o755 });
      await chmod(join(root, dir), 0o755);
      made.add(dir);
    }
    const target = join(root, file.path);
    // checkTree refused every path that could leave root; this is the last word before the write.
    if (!target.startsWith(root + sep)) throw failure(`plugin file ${JSON.stringify(file.path)} would be written outside the plugin`, 'plugin_blob_invalid');
    await writeFileExclusive(target, file.data, file.mode);
  }
  for (const dir of made) await syncDir(join(root, dir));
}

async function writeFileExclusive(path: string, data: Buffer, mode: number): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await handle.writeFile(data);
    // The umask narrowed the mode given to open; the stored mode is the mode.
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
