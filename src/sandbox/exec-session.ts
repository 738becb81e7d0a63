import { PassThrough, Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { invalidInput } from '../errors.js';
import { execOptions, INSIDE } from './bwrap-args.js';
import type { CgroupCounters } from './cgroup.js';
import { openFifoReader, openFifoWriter } from './fifos.js';
import { describeLimitValue } from './limits.js';
import type { LimitName, SandboxLimits } from './limits.js';
import type { ExecHandle, ExecRequest, ExecResult } from './types.js';

/** What one command needs from its live sandbox. */
export interface ExecContext {
  limits: SandboxLimits;
  baseEnv: Record<string, string>;
  acquireSlot(): Promise<{ slot: number; in: string; out: string; err: string }>;
  releaseSlot(slot: number): void;
  writeArgs(id: string, options: string[], argv: string[]): Promise<void>;
  removeArgs(id: string): void;
  /** Sends one request line to the agent. */
  send(line: string): void;
  /** Subscribes to the agent's `started` / `done` for this id; `lost` if the sandbox dies. */
  watch(id: string, handlers: { started(): void; done(status: number): void; lost(): void }): () => void;
  counters(): Promise<CgroupCounters | undefined>;
  diskFull(): Promise<boolean>;
}

const SIGXCPU_STATUS = 128 + 24;
const SIGKILL_STATUS = 128 + 9;

export function startExec(ctx: ExecContext, id: string, request: ExecRequest): ExecHandle {
  validate(request);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const result = runExec(ctx, id, request, stdout, stderr);
  return { stdout, stderr, result };
}

async function runExec(ctx: ExecContext, id: string, request: ExecRequest, stdout: PassThrough, stderr: PassThrough): Promise<ExecResult> {
  const begun = Date.now();
  const timeoutMs = request.timeoutMs ?? ctx.limits.wallMs;
  const env = { ...ctx.baseEnv, ...request.env };
  let limit: LimitName | undefined;
  let cancelled = false;
  let started = false;
  let killRequested = false;
  let outputBytes = 0;

  const slot = await ctx.acquireSlot();
  const sockets: Socket[] = [];
  const track = (socket: Socket) => {
    sockets.push(socket);
    return socket;
  };
  const cleanup = () => {
    for (const socket of sockets) socket.destroy();
    ctx.removeArgs(id);
    ctx.releaseSlot(slot.slot);
  };
  try {
    // Independent preparations, in parallel: this is most of a warm exec's host-side cost.
    const [before, outSocket, errSocket, inSocket] = await Promise.all([
      ctx.counters(),
      openFifoReader(slot.out).then(track),
      openFifoReader(slot.err).then(track),
      request.stdin === undefined ? undefined : openFifoWriter(slot.in).then(track),
      ctx.writeArgs(id, execOptions(request.cwd ?? INSIDE.workspace, env), request.argv),
    ]);

    const stop = (why: LimitName | 'cancelled') => {
      if (why === 'cancelled') cancelled = true;
      else limit ??= why;
      if (killRequested) return;
      killRequested = true;
      if (started) ctx.send(`kill ${id}`);
    };

    const outEnded = forward(outSocket, stdout, () => outputBytes, (n) => (outputBytes += n), ctx.limits.outputBytes, () => stop('output'));
    const errEnded = forward(errSocket, stderr, () => outputBytes, (n) => (outputBytes += n), ctx.limits.outputBytes, () => stop('output'));

    const timer = setTimeout(() => stop('wall clock'), timeoutMs);
    const onAbort = () => stop('cancelled');
    if (request.signal?.aborted) onAbort();
    request.signal?.addEventListener('abort', onAbort, { once: true });

    const status = await new Promise<number | undefined>((resolve) => {
      const unwatch = ctx.watch(id, {
        started: () => {
          started = true;
          if (killRequested) ctx.send(`kill ${id}`);
          if (inSocket) feedStdin(request.stdin as string | Uint8Array | Readable, inSocket);
        },
        done: (code) => {
          unwatch();
          resolve(code);
        },
        lost: () => {
          unwatch();
          resolve(undefined);
        },
      });
      ctx.send(`run ${id} ${slot.slot} ${inSocket ? 1 : 0}`);
    });
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    if (inSocket && request.stdin instanceof Readable) request.stdin.unpipe(inSocket);
    inSocket?.destroy();
    if (status === undefined) {
      // The sandbox died under the command: its writers are gone, so the streams end too.
      outSocket.destroy();
      errSocket.destroy();
    }
    await Promise.all([outEnded, errEnded]);

    const exitCode = status ?? SIGKILL_STATUS;
    limit ??= await limitFromCounters(ctx, before, exitCode);
    if (limit) stderr.write(`tagbox: ${limit} limit reached (${describeLimitValue(limit, ctx.limits, timeoutMs)}); the command was stopped\n`);
    else if (cancelled) stderr.write('tagbox: the command was cancelled\n');
    else if (status === undefined) stderr.write('tagbox: the sandbox stopped while the command ran\n');
    stdout.end();
    stderr.end();
    return { exitCode, durationMs: Date.now() - begun, ...(limit ? { limit } : {}), ...(cancelled ? { cancelled } : {}) };
  } catch (error) {
    stdout.end();
    stderr.end();
    throw error;
  } finally {
    cleanup();
  }
}

/** Which cgroup counter moved during the command, or what its exit status says. */
async function limitFromCounters(ctx: ExecContext, before: CgroupCounters | undefined, exitCode: number): Promise<LimitName | undefined> {
  const after = await ctx.counters();
  if (before && after) {
    if (after.oomKills > before.oomKills) return 'memory';
    if (after.pidsMax > before.pidsMax) return 'processes';
  }
  if (exitCode === SIGXCPU_STATUS) return 'cpu time';
  if (await ctx.diskFull()) return 'disk';
  return undefined;
}

/**
 * Copies a FIFO into the caller's stream with back-pressure, counting bytes
 * against the output cap; past the cap the rest is dropped and the command stopped.
 */
function forward(source: Socket, sink: PassThrough, total: () => number, add: (n: number) => void, cap: number, overflow: () => void): Promise<void> {
  return new Promise((resolve) => {
    sink.on('drain', () => source.resume());
    source.on('data', (chunk: Buffer) => {
      const room = cap - total();
      if (room <= 0) {
        overflow();
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      add(part.length);
      if (!sink.write(part)) source.pause();
      if (part.length < chunk.length) overflow();
    });
    source.once('close', () => resolve());
    source.once('error', () => resolve());
  });
}

function feedStdin(stdin: string | Uint8Array | Readable, target: Socket): void {
  target.on('error', () => undefined); // the command may exit without reading its input
  if (stdin instanceof Readable) {
    stdin.pipe(target);
    return;
  }
  target.end(stdin);
}

function validate(request: ExecRequest): void {
  if (!Array.isArray(request.argv) || request.argv.length === 0) throw invalidInput('exec: argv must name a command');
  const strings = [...request.argv, request.cwd ?? '', ...Object.entries(request.env ?? {}).flat()];
  if (strings.some((s) => typeof s !== 'string' || s.includes('\0'))) throw invalidInput('exec: arguments, cwd and env must be strings without NUL');
  for (const key of Object.keys(request.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw invalidInput(`exec: invalid environment variable name ${JSON.stringify(key)}`);
  }
  if (request.cwd !== undefined && !request.cwd.startsWith('/')) throw invalidInput('exec: cwd must be an absolute path inside the sandbox');
  if (request.timeoutMs !== undefined && !(request.timeoutMs > 0)) throw invalidInput('exec: timeoutMs must be positive');
}
