import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { Invocation, InvocationPort, InvokeResult } from '../../../src/sessions/invocation.js';
import type { StoreLocation } from '../../../src/store/connect.js';
import type { ControlStore } from '../../../src/store/database.js';
import type { Schedule } from '../../../src/surfaces/schedules/model.js';
import { createSchedule } from '../../../src/surfaces/schedules/schedules-repo.js';

/** The session layer as the scheduler sees it: records every Invocation; answers as told. */
export class RecordingPort implements InvocationPort {
  readonly calls: Invocation[] = [];
  /** Decides the answer to one call; the default accepts, each in a thread of its own. */
  answer: (invocation: Invocation, n: number) => InvokeResult | Promise<InvokeResult> = (_i, n) => ({
    status: 'accepted',
    thread: `thread-${n}`,
    message: `message-${n}`,
    turn: `turn-${n}`,
    duplicate: false,
  });
  private waiters: (() => void)[] = [];

  async invoke(invocation: Invocation): Promise<InvokeResult> {
    this.calls.push(invocation);
    for (const wake of this.waiters.splice(0)) wake();
    return this.answer(invocation, this.calls.length);
  }

  /** Resolves once at least `n` calls have arrived. */
  async waitForCalls(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

export const silentLogger = pino({ level: 'silent' });

/** A schedule as if created at `createdAt` (fire times count from there). */
export async function scheduleAt(store: ControlStore, input: Omit<Schedule, 'id' | 'createdAt' | 'timezone'> & { timezone?: string }, createdAt: string): Promise<Schedule> {
  const schedule = await createSchedule(store.db, { timezone: 'UTC', ...input });
  await store.db.updateTable('schedules').set({ created_at: createdAt }).where('id', '=', schedule.id).execute();
  return { ...schedule, createdAt };
}

export async function runsOf(store: ControlStore, scheduleId: string) {
  return store.db.selectFrom('schedule_runs').selectAll().where('schedule_id', '=', scheduleId).orderBy('fire_time').execute();
}

export const at = (base: string, minutes: number) => new Date(new Date(base).getTime() + minutes * 60_000);

/** A scheduler in a process of its own (tick-worker.ts), on its own connection to the same store. */
export class TickWorker {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: AsyncIterator<string>;

  constructor(location: StoreLocation, instanceId: string) {
    const worker = fileURLToPath(new URL('./tick-worker.ts', import.meta.url));
    this.child = spawn(process.execPath, ['--import', 'tsx', worker, JSON.stringify(location), instanceId], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async ready(): Promise<void> {
    const line = await this.lines.next();
    if (line.value !== 'ready') throw new Error(`tick worker: expected "ready", got ${String(line.value)}`);
  }

  /** Ticks at `now` in the worker; the dedupe keys of the firings it won. */
  async tick(now: Date): Promise<string[]> {
    this.child.stdin.write(`${now.toISOString()}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error('tick worker: exited');
    return (JSON.parse(line.value) as { keys: string[] }).keys;
  }

  async close(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.on('close', resolve));
    this.child.stdin.end();
    return exited;
  }
}
