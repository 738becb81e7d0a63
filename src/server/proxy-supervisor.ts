import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';

export interface ProxySupervisorOptions {
  /** argv after `node`: the tagbox launcher, global flags, `proxy-daemon --control SOCKET --peer-pid PID`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Under privilege separation: the proxy's own user. */
  uid?: number;
  gid?: number;
}

const MAX_BACKOFF_MS = 30_000;
// A child that stayed up this long is healthy again: its next crash restarts fast.
const STABLE_AFTER_MS = 60_000;

/**
 * Runs the Agent Proxy as its own process (the only one holding the vault's
 * private key) and keeps it running: restarted with exponential backoff when
 * it dies, stopped with `tagbox up`. Its stdin is a pipe, so if this process
 * dies without a word the child sees end-of-file and leaves too. (Whether it
 * answers is the server's question, over the control socket that only the
 * server may use.)
 */
export class ProxySupervisor {
  #child: ChildProcess | undefined;
  #stopping = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProxySupervisorOptions) {}

  start(): void {
    this.#spawn();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  }

  #spawn(): void {
    const started = Date.now();
    const { uid, gid } = this.options;
    const child = spawn(process.execPath, this.options.args, {
      env: this.options.env,
      stdio: ['pipe', 'pipe', 'inherit'],
      // Its own process group: a Ctrl-C reaches `tagbox up`, which stops everything in order.
      detached: true,
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    });
    this.#child = child;
    this.options.logger.info({ pid: child.pid }, 'agent proxy starting');
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.trim() !== 'ready' || this.#child !== child) return;
      this.options.logger.info({ pid: child.pid }, 'agent proxy ready');
    });
    child.stdin!.on('error', () => undefined);
    child.on('error', (error) => this.options.logger.error({ err: error }, 'agent proxy failed to start'));
    child.on('exit', (code, signal) => {
      if (this.#stopping) return;
      if (Date.now() - started > STABLE_AFTER_MS) this.#failures = 0;
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.#failures);
      this.#failures += 1;
      this.options.logger.warn({ code, signal, restartInMs: delay }, 'agent proxy exited; restarting');
      this.#timer = setTimeout(() => this.#spawn(), delay);
    });
  }
}
