import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlStore } from '../store/database.js';
import type { AuditEvent, AuditEventType } from './events.js';
import {
  appendLines,
  closeHour,
  ensureDir,
  hourOf,
  listFiles,
  readCursor,
  recoverOpenFiles,
  writeCursor,
  type CursorState,
} from './siem-files.js';

/** The network events a SIEM wants: every egress decision and every credential use. */
export const NETWORK_EVENT_TYPES: AuditEventType[] = ['egress', 'credential-use'];

export interface SiemExportOptions {
  /**
   * How long after an hour ends its file stays open, for events stamped in that
   * hour but committed a little later (the proxy's group commit). Default 2 minutes.
   */
  graceMs?: number;
  now?: () => Date;
}

export interface SiemPassResult {
  exported: number;
  /** Hours whose files were closed (renamed to `.jsonl`) in this pass. */
  closed: string[];
  /** False when another exporter held the directory's lock; nothing was done. */
  ran: boolean;
}

const PAGE = 1000;

/**
 * One export pass: every network event after the cursor, in seq order, into
 * its hour's open file; then closes the hours that are over. The writer
 * discipline commits events in seq order, so a seq cursor never skips one.
 * An event stamped in an hour that is already closed (committed more than the
 * grace period late) goes into the current hour's file, keeping its own ts:
 * closed files are never written again.
 */
export async function exportNetworkEvents(store: ControlStore, dir: string, options: SiemExportOptions = {}): Promise<SiemPassResult> {
  ensureDir(dir);
  const release = takeLock(dir);
  if (!release) return { exported: 0, closed: [], ran: false };
  try {
    const now = options.now ?? (() => new Date());
    const graceMs = options.graceMs ?? 120_000;
    const state = recover(dir);
    let exported = 0;
    for (;;) {
      const rows = await store.db
        .selectFrom('audit_events')
        .select(['seq', 'data', 'hash'])
        .where('seq', '>', state.seq)
        .where('type', 'in', NETWORK_EVENT_TYPES)
        .orderBy('seq', 'asc')
        .limit(PAGE)
        .execute();
      if (rows.length === 0) break;
      const openHour = currentOpenHour(now(), state.closedThrough);
      const events = rows.map((r) => ({ ...(JSON.parse(r.data) as AuditEvent), hash: r.hash }));
      // Runs of consecutive events bound for one file: each run is one append,
      // and the cursor moves after it, so files only ever grow in seq order.
      let i = 0;
      while (i < events.length) {
        const hour = targetHour(events[i]!, state.closedThrough, openHour);
        let j = i + 1;
        while (j < events.length && targetHour(events[j]!, state.closedThrough, openHour) === hour) j++;
        const run = events.slice(i, j);
        appendLines(dir, hour, run.map((e) => `${JSON.stringify(e)}\n`).join(''));
        state.seq = run[run.length - 1]!.seq;
        writeCursor(dir, state);
        exported += run.length;
        i = j;
      }
      if (rows.length < PAGE) break;
    }
    return { exported, closed: closeFinishedHours(dir, state, now(), graceMs), ran: true };
  } finally {
    release();
  }
}

export interface SiemExporter {
  stop(): Promise<void>;
}

/** Periodic export for `tagbox up`: a pass now and every intervalMs; passes never overlap. */
export function startSiemExport(
  store: ControlStore,
  dir: string,
  options: SiemExportOptions & { intervalMs?: number; onError?: (error: unknown) => void } = {},
): SiemExporter {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const pass = () => {
    running = exportNetworkEvents(store, dir, options).catch((error: unknown) => options.onError?.(error));
  };
  pass();
  const timer = setInterval(() => {
    if (stopped) return;
    void running.then(() => {
      if (!stopped) pass();
    });
  }, options.intervalMs ?? 60_000);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

function recover(dir: string): CursorState {
  const state = readCursor(dir);
  const written = recoverOpenFiles(dir);
  if (written > state.seq) {
    state.seq = written;
    writeCursor(dir, state);
  }
  // A crash between recording an hour as closed and renaming its file.
  for (const f of listFiles(dir)) if (f.partial && f.hour <= state.closedThrough) closeHour(dir, f.hour);
  return state;
}

function targetHour(event: AuditEvent, closedThrough: string, openHour: string): string {
  const hour = hourOf(event.ts);
  return hour <= closedThrough ? openHour : hour;
}

function currentOpenHour(now: Date, closedThrough: string): string {
  const hour = hourOf(now);
  if (hour > closedThrough) return hour;
  // A clock that went backwards: the first hour after the closed ones.
  return hourOf(new Date(Date.parse(`${closedThrough}:00:00.000Z`) + 3_600_000));
}

/**
 * Closes every hour that ended more than graceMs ago. The cursor records it
 * first, then the files are renamed: a crash in between is finished by recover().
 */
function closeFinishedHours(dir: string, state: CursorState, now: Date, graceMs: number): string[] {
  const closable = hourOf(new Date(now.getTime() - graceMs - 3_600_000));
  if (closable <= state.closedThrough) return [];
  state.closedThrough = closable;
  writeCursor(dir, state);
  const closed: string[] = [];
  for (const f of listFiles(dir)) {
    if (f.partial && f.hour <= closable) {
      closeHour(dir, f.hour);
      closed.push(f.hour);
    }
  }
  return closed;
}

/**
 * One exporter per directory (a `tagbox up` and a cron job may share a home):
 * an exclusive lock file holding the owner's pid; a dead owner's lock is taken over.
 */
function takeLock(dir: string): (() => void) | undefined {
  const file = join(dir, 'network.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => unlinkSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = readPid(file);
      if (pid === undefined) continue; // released meanwhile: try again
      if (pid === process.pid || isAlive(pid)) return undefined;
      unlinkSync(file);
    }
  }
  return undefined;
}

function readPid(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
