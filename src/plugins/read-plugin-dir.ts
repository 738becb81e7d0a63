/**
 * A plugin directory on disk -> its file tree, refusing anything that is not
 * a plain file or directory. Only the bytes and the executable bit are kept
 * (owners, mtimes, other bits are not), so the same tree has the same digest
 * wherever it was checked out. `.git` entries are skipped: history and a
 * checkout's config (remotes with tokens) do not belong in a sandbox.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { invalidInput } from '../errors.js';
import { modeOf, pathProblem, PLUGIN_LIMITS, shownPath, type PluginFile } from './plugin-tree.js';

/** Directories and files together: a bound on the walk even for a tree of empty directories. */
const MAX_ENTRIES = 10 * PLUGIN_LIMITS.maxFiles;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// S_ISUID | S_ISGID (not in @types/node's fs.constants).
const SPECIAL_BITS = 0o4000 | 0o2000;

export async function readPluginDir(dir: string): Promise<PluginFile[]> {
  const root = resolve(dir);
  const label = (rel: string) => (rel ? `${dir.replace(/\/+$/, '')}/${shownPath(rel)}` : dir);
  const refuse = (rel: string, why: string) => invalidInput(`${label(rel)}: ${why}`, 'invalid_plugin');

  const top = await lstat(root).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ENOENT' ? refuse('', 'no such directory') : refuse('', error.message);
  });
  if (top.isSymbolicLink()) throw refuse('', 'a symlink; give the plugin directory itself');
  if (!top.isDirectory()) throw refuse('', 'not a directory');

  const files: PluginFile[] = [];
  let entries = 0;
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel ? join(root, rel) : root, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const raw of names) {
      let name: string;
      try {
        name = UTF8.decode(raw);
      } catch {
        throw refuse(rel, `has a file name that is not UTF-8 ("${escapeBytes(raw)}")`);
      }
      if (name === '.git') continue;
      const child = rel ? `${rel}/${name}` : name;
      const problem = pathProblem(child);
      if (problem) throw refuse(child, problem);
      if (++entries > MAX_ENTRIES) throw refuse('', `more than ${MAX_ENTRIES} files and directories`);
      const abs = join(root, child);
      const st = await lstat(abs);
      if (st.isSymbolicLink()) throw refuse(child, 'a symlink; plugins are plain files and directories only');
      if (st.mode & SPECIAL_BITS) throw refuse(child, 'has the setuid or setgid bit; plugins are plain files (chmod u-s,g-s)');
      if (st.isDirectory()) {
        await walk(child);
        continue;
      }
      if (!st.isFile()) throw refuse(child, `a ${kindOf(st)}; plugins are plain files and directories only`);
      if (files.length + 1 > PLUGIN_LIMITS.maxFiles) throw refuse('', `more than ${PLUGIN_LIMITS.maxFiles} files; a plugin has at most ${PLUGIN_LIMITS.maxFiles}`);
      bytes += st.size;
      if (bytes > PLUGIN_LIMITS.maxBytes) throw refuse('', `more than ${PLUGIN_LIMITS.maxBytes / 1024 / 1024} MiB in total (at ${shownPath(child)})`);
      files.push({ path: child, mode: modeOf(st.mode), data: await readPlain(abs, st.size, () => refuse(child, 'changed while it was read')) });
    }
  };
  await walk('');
  return files;
}

/** Reads a regular file without following a link that replaced it since lstat, and no more than it had. */
async function readPlain(path: string, size: number, changed: () => Error): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'ELOOP' ? changed() : error;
  });
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size !== size) throw changed();
    const data = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const { bytesRead } = await handle.read(data, read, size - read, read);
      if (bytesRead === 0) throw changed();
      read += bytesRead;
    }
    return data;
  } finally {
    await handle.close();
  }
}

/** Printable ASCII as is, every other byte as \\xNN: safe to show on a terminal. */
function escapeBytes(raw: Buffer): string {
  return [...raw].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

function kindOf(st: { isBlockDevice(): boolean; isCharacterDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isBlockDevice()) return 'block device';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return 'special file';
}
