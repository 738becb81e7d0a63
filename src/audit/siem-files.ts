import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The SIEM pickup directory, on disk. One JSON Lines file per UTC hour of
 * event time: `network-YYYY-MM-DDTHH.jsonl.partial` while the hour may still
 * receive events, renamed to `network-YYYY-MM-DDTHH.jsonl` once it is closed.
 * A SIEM collects only `*.jsonl`: those are complete and never written again.
 * `network.cursor.json` remembers how far the exporter got.
 */
export const PARTIAL_SUFFIX = '.partial';
const CURSOR_FILE = 'network.cursor.json';
const FILE_RE = /^network-(\d{4}-\d{2}-\d{2}T\d{2})\.jsonl(\.partial)?$/;

export interface CursorState {
  /** Last exported event's seq: everything up to it is in a file. */
  seq: number;
  /** The latest closed hour (`YYYY-MM-DDTHH`), or '' before any. Hours up to it are never written again. */
  closedThrough: string;
}

/** `YYYY-MM-DDTHH` of an ISO time, in UTC. */
export function hourOf(ts: string | Date): string {
  return (typeof ts === 'string' ? new Date(ts) : ts).toISOString().slice(0, 13);
}

export function finalName(hour: string): string {
  return `network-${hour}.jsonl`;
}

export function ensureDir(dir: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is masked by umask; make a fresh directory's mode exact.
  if (created !== undefined) chmodSync(dir, 0o700);
}

export function readCursor(dir: string): CursorState {
  const file = join(dir, CURSOR_FILE);
  if (!existsSync(file)) return { seq: 0, closedThrough: '' };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<CursorState>;
  return { seq: Number(parsed.seq ?? 0), closedThrough: String(parsed.closedThrough ?? '') };
}

/** Written to a temporary file, synced, then renamed over: never half a cursor. */
export function writeCursor(dir: string, state: CursorState): void {
  const file = join(dir, CURSOR_FILE);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Appends lines to an hour's open file in one write, synced before the cursor moves past them. */
export function appendLines(dir: string, hour: string, text: string): void {
  const file = join(dir, finalName(hour) + PARTIAL_SUFFIX);
  const fresh = !existsSync(file);
  const fd = openSync(file, 'a', 0o600);
  try {
    if (fresh) chmodSync(file, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function closeHour(dir: string, hour: string): void {
  const partial = join(dir, finalName(hour) + PARTIAL_SUFFIX);
  if (existsSync(partial)) renameSync(partial, join(dir, finalName(hour)));
}

export function listFiles(dir: string): { name: string; hour: string; partial: boolean }[] {
  return readdirSync(dir)
    .map((name) => ({ name, m: FILE_RE.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
    .map(({ name, m }) => ({ name, hour: m[1]!, partial: m[2] !== undefined }))
    .sort((a, b) => a.hour.localeCompare(b.hour));
}

/**
 * After a crash: the cursor is written after each append, so an append may be
 * in a file while the cursor lags behind it, and the last append may be torn.
 * Appends go out in seq order, so the highest seq in the open files is exactly
 * how far the export got. Cuts a torn last line; returns that seq (0 if none).
 */
export function recoverOpenFiles(dir: string): number {
  let maxSeq = 0;
  for (const f of listFiles(dir).filter((x) => x.partial)) {
    const file = join(dir, f.name);
    const text = readFileSync(file, 'utf8');
    const end = text.lastIndexOf('\n') + 1;
    if (end < text.length) truncateSync(file, Buffer.byteLength(text.slice(0, end)));
    const lines = text.slice(0, end).trimEnd().split('\n').filter(Boolean);
    const last = lines[lines.length - 1];
    if (last) maxSeq = Math.max(maxSeq, Number((JSON.parse(last) as { seq: number }).seq));
  }
  return maxSeq;
}
