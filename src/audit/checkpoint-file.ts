import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { ensureDir } from './siem-files.js';

/**
 * The latest checkpoint, also kept outside the database (default
 * TAGBOX_HOME/audit/checkpoint.json, beside the SIEM files): deleting events
 * from the tail, or the checkpoint rows that covered them, cannot reach it, so
 * verify compares the two. One JSON object, written atomically (temporary
 * file, fsync, rename), and only ever moved forward by the writers.
 */
export type ExternalCheckpoint =
  | { state: 'missing' }
  | { state: 'invalid'; problem: string }
  | { state: 'present'; checkpoint: Checkpoint };

export function readCheckpointFile(file: string): ExternalCheckpoint {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    return { state: 'invalid', problem: `cannot read it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  const parsed = parseCheckpoint(text);
  return typeof parsed === 'string' ? { state: 'invalid', problem: parsed } : { state: 'present', checkpoint: parsed };
}

/**
 * Writes `checkpoint` unless the file already holds one at least as far along
 * (another process got further): the file never moves backwards through us.
 * Two processes writing in the same instant can leave the older of their two
 * checkpoints (each read the file before the other renamed); the next one fixes it.
 * Asynchronous: its fsync must not stall the proxy's event loop.
 */
export async function writeCheckpointFile(file: string, checkpoint: Checkpoint): Promise<boolean> {
  const current = readCheckpointFile(file);
  if (current.state === 'present' && current.checkpoint.seq >= checkpoint.seq) return false;
  ensureDir(dirname(file));
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o640);
  try {
    // Not secret (a signed statement), and read by every writer: the server's and the proxy's under privilege separation.
    await handle.chmod(0o640);
    await handle.writeFile(`${JSON.stringify(checkpoint)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    // Checked again just before the rename: a newer one may have landed meanwhile.
    const now = readCheckpointFile(file);
    if (now.state === 'present' && now.checkpoint.seq >= checkpoint.seq) {
      await unlink(tmp);
      return false;
    }
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  return true;
}
