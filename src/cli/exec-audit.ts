import { Worker } from 'node:worker_threads';
import type { AuditEventInput } from '../audit/events.js';
import { TagboxError } from '../errors.js';
import type { AuditReply, AuditRequest } from './exec-audit-worker.js';
import type { GlobalOptions } from './context.js';

/**
 * The main thread's side of exec-audit-worker.ts: the worker starts at once and
 * loads its code while this thread starts the sandbox. Failures come back as
 * the TagboxError the worker met (a bad config or bundle file: exit 2).
 */
export class ExecAudit {
  private readonly worker: Worker;
  private readonly waiting: Array<(reply: AuditReply) => void> = [];
  private readonly exited: Promise<void>;
  private gone?: string;
  private opened = false;

  constructor() {
    this.worker = adoptStartedWorker() ?? new Worker(new URL('./exec-audit-worker.js', import.meta.url));
    this.worker.on('message', (reply: AuditReply) => this.waiting.shift()?.(reply));
    const lost = (why: string) => {
      this.gone ??= why;
      for (const answer of this.waiting.splice(0)) answer({ ok: false, error: { message: `the audit log's worker ${why}`, exitCode: 1, code: 'failed' } });
    };
    this.worker.on('error', (error) => lost(`failed: ${error.message}`));
    this.exited = new Promise((resolve) => this.worker.once('exit', (code) => {
      lost(`exited (${code})`);
      resolve();
    }));
  }

  /** Loads the config and the bundle file, opens the store and appends `event` (with the bundles' names). */
  async open(request: { globals: GlobalOptions; bundles?: string; bundle: string[]; event: AuditEventInput }): Promise<void> {
    this.opened = true;
    await this.ask({ op: 'open', ...request });
  }

  async append(event: AuditEventInput): Promise<void> {
    await this.ask({ op: 'release', event });
  }

  /** Closes the store (its last checkpoint signed) and waits for the worker to end. */
  async close(): Promise<void> {
    if (!this.opened) {
      await this.worker.terminate(); // nothing was written: nothing to sign
      return;
    }
    if (!this.gone) await this.ask({ op: 'close' }).catch(() => undefined);
    await this.exited;
  }

  private ask(request: AuditRequest): Promise<AuditReply> {
    if (this.gone) return Promise.reject(new TagboxError(`the audit log's worker ${this.gone}`));
    return new Promise((resolve, reject) => {
      this.waiting.push((reply) => (reply.ok ? resolve(reply) : reject(new TagboxError(reply.error.message, { exitCode: reply.error.exitCode, code: reply.error.code }))));
      this.worker.postMessage(request);
    });
  }
}

/**
 * bin/tagbox.js starts the worker before the CLI's modules load when exec runs
 * from the bundle; taken once. Otherwise it starts from here: beside this module,
 * in dist/cli/ and in dist/bundle/ alike (scripts/bundle-cli.mjs makes it an entry).
 */
function adoptStartedWorker(): Worker | undefined {
  const key = Symbol.for('tagbox.execAuditWorker');
  const holder = globalThis as Record<symbol, unknown>;
  const started = holder[key];
  delete holder[key];
  if (!(started instanceof Worker)) return undefined;
  started.ref();
  return started;
}
