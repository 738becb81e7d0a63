import type { Place } from '../access/effective-policy.js';
import { SANDBOX_USER } from '../sandbox/etc-files.js';
import type { ExecHandle, ExecRequest } from '../sandbox/types.js';
import { neutralise } from '../util/output-limits.js';
import { placeKey } from './model.js';

/**
 * Channel memory, the sandbox side: one text file that the agent reads and
 * edits at a fixed path, copied in before every turn and out after it. What
 * comes out is data (invariant 9): read with a bounded command that refuses
 * links and special files, cut to the cap by a pure rule, never interpreted.
 */
export const MEMORY_DIR = `${SANDBOX_USER.home}/.tagbox`;
export const MEMORY_PATH = `${MEMORY_DIR}/memory.md`;
export const MEMORY_MAX_BYTES = 64 * 1024;
export const MEMORY_CUT_LINE = '[cut: channel memory is capped at 64 KiB]';

/** Both copies run in the sandbox as the agent; this bounds a command the agent may try to stall (a FIFO raced in). */
const COPY_TIMEOUT_MS = 15_000;
const REFUSED_LINK = 97;
const REFUSED_SPECIAL = 98;

/** One memory per channel, and one per member in their DM: `channel:<id>` | `dm:<member id>`. */
export function memoryScope(place: Place): string {
  return placeKey(place);
}

export type Exec = (request: ExecRequest) => ExecHandle;

/**
 * Writes `content` as the memory file, from stdin (never argv: it is the
 * agent's text, and argv is visible to every process). Whatever the agent
 * left at the path or its directory — a link, a directory, a FIFO, a file
 * it made read-only — is removed first, never written through; a regular
 * file is rewritten. The file is the agent's own.
 */
export async function copyMemoryIn(exec: Exec, content: string): Promise<void> {
  const script = [
    `d=${MEMORY_DIR}; f=${MEMORY_PATH}`,
    // Each repair costs a process, so it runs only when needed: a turn waits for this.
    'if [ -L "$d" ] || [ ! -d "$d" ]; then rm -rf "$d" && mkdir -p "$d" || exit 1; fi',
    'if [ ! -w "$d" ] || [ ! -x "$d" ]; then chmod u+rwx "$d" || exit 1; fi',
    'if [ -L "$f" ] || { [ -e "$f" ] && { [ ! -f "$f" ] || [ ! -w "$f" ]; }; }; then rm -rf "$f" || exit 1; fi',
    'cat > "$f"',
  ].join('\n');
  const { exitCode, stderr } = await run(exec, script, Buffer.from(content, 'utf8'), 0);
  if (exitCode !== 0) throw new Error(`could not write ${MEMORY_PATH} in the sandbox (exit ${exitCode}): ${stderr}`);
}

export type MemoryCopy = { ok: true; content: string; cut: boolean } | { ok: false; refused: 'link' | 'special' | 'unreadable'; reason: string };

/**
 * Reads the memory file: at most the cap plus one byte (more means it is cut).
 * A missing file is an empty memory. A symbolic link (at the file or its
 * directory) or anything but a regular file is refused: the agent could point
 * the path at another file, and what is saved must be what it wrote there.
 * The check and the read are not atomic, but both run inside the sandbox as
 * the agent, so a race wins nothing it could not write into the file itself;
 * the read is bounded in size and time.
 */
export async function copyMemoryOut(exec: Exec): Promise<MemoryCopy> {
  const script = [
    `d=${MEMORY_DIR}; f=${MEMORY_PATH}`,
    `if [ -L "$d" ] || [ -L "$f" ]; then exit ${REFUSED_LINK}; fi`,
    '[ -e "$f" ] || exit 0',
    `[ -f "$f" ] || exit ${REFUSED_SPECIAL}`,
    `exec head -c ${MEMORY_MAX_BYTES + 1} "$f"`,
  ].join('\n');
  const { exitCode, stdout, stderr } = await run(exec, script, undefined, MEMORY_MAX_BYTES + 1);
  if (exitCode === REFUSED_LINK) return { ok: false, refused: 'link', reason: `${MEMORY_PATH} (or its directory) is a symbolic link` };
  if (exitCode === REFUSED_SPECIAL) return { ok: false, refused: 'special', reason: `${MEMORY_PATH} is not a regular file` };
  if (exitCode !== 0) return { ok: false, refused: 'unreadable', reason: `${MEMORY_PATH} could not be read (exit ${exitCode}${stderr ? `: ${neutralise(stderr)}` : ''})` };
  return { ok: true, ...capMemory(stdout) };
}

/**
 * The cut rule, pure. Memory is text: the bytes are read as UTF-8 (a broken
 * sequence becomes U+FFFD) and NUL becomes U+FFFD too (no text column of
 * Postgres holds it). Within the cap it is kept as it is. Over it, it is cut
 * at the last line boundary that leaves room for a last line saying so; a
 * first line longer than that is cut at the last whole character that fits.
 * The result is at most MEMORY_MAX_BYTES of valid UTF-8, and cutting it
 * again changes nothing.
 */
export function capMemory(raw: Uint8Array, max = MEMORY_MAX_BYTES): { content: string; cut: boolean } {
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8').replaceAll('\u0000', '\uFFFD');
  const bytes = Buffer.from(text, 'utf8');
  if (raw.byteLength <= max && bytes.length <= max) return { content: text, cut: false };
  // Room for the kept text, a newline ending a cut line, and the note with its newline.
  const room = Math.max(0, max - Buffer.byteLength(MEMORY_CUT_LINE, 'utf8') - 2);
  let end = Math.min(room, bytes.length);
  const newline = end > 0 ? bytes.lastIndexOf(0x0a, end - 1) : -1;
  if (newline >= 0) end = newline + 1;
  else while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  const kept = bytes.subarray(0, end).toString('utf8');
  return { content: `${kept}${kept === '' || kept.endsWith('\n') ? '' : '\n'}${MEMORY_CUT_LINE}\n`, cut: true };
}

async function run(exec: Exec, script: string, stdin: Buffer | undefined, maxStdout: number): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const handle = exec({ argv: ['sh', '-c', script], cwd: SANDBOX_USER.home, timeoutMs: COPY_TIMEOUT_MS, ...(stdin ? { stdin } : {}) });
  const chunks: Buffer[] = [];
  let held = 0;
  handle.stdout.on('data', (chunk: Buffer) => {
    // head bounds it already; the host does not trust that.
    const part = chunk.subarray(0, Math.max(0, maxStdout - held));
    held += part.length;
    if (part.length) chunks.push(part);
  });
  let stderr = '';
  handle.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 300) stderr += chunk.toString('utf8').slice(0, 300 - stderr.length);
  });
  const result = await handle.result;
  return { exitCode: result.exitCode, stdout: Buffer.concat(chunks), stderr: stderr.trim() };
}
