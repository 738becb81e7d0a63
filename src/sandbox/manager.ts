import type { ExecHandle, ExecRequest, Sandbox, SandboxProvider, SandboxSpec } from './types.js';

export interface SandboxManagerOptions {
  provider: SandboxProvider;
  /** The spec of a session's sandbox, asked each time one is (re)built. */
  spec: (key: string) => SandboxSpec | Promise<SandboxSpec>;
  /** Release a sandbox after this long without a running command. Default 15 minutes. */
  idleMs?: number;
  /** Told when a sandbox is built or released (for audit events). */
  onEvent?: (event: { kind: 'created' | 'released'; key: string; sandbox: Sandbox }) => void;
}

interface Entry {
  sandbox: Promise<Sandbox>;
  running: number;
  timer?: NodeJS.Timeout;
}

/**
 * Session key -> live sandbox. Builds on first exec, keeps it while commands
 * run, releases it after an idle period (processes killed, files deleted) and
 * builds a fresh one on the next exec. A sandbox that died is rebuilt too.
 */
export class SandboxManager {
  private readonly entries = new Map<string, Entry>();
  private readonly idleMs: number;

  constructor(private readonly options: SandboxManagerOptions) {
    this.idleMs = options.idleMs ?? 15 * 60_000;
  }

  async exec(key: string, request: ExecRequest): Promise<ExecHandle> {
    const entry = await this.ensure(key);
    const sandbox = await entry.sandbox;
    clearTimeout(entry.timer);
    entry.running++;
    let handle: ExecHandle;
    try {
      handle = this.options.provider.exec(sandbox, request);
    } catch (error) {
      this.finished(key, entry);
      throw error;
    }
    const settle = () => this.finished(key, entry);
    handle.result.then(settle, settle);
    return handle;
  }

  /**
   * The session's live sandbox, built now if it had none (or it died);
   * `created` says it was, so that the caller can restore what it keeps.
   */
  async acquire(key: string): Promise<{ sandbox: Sandbox; created: boolean }> {
    const existing = this.entries.get(key);
    const entry = await this.ensure(key);
    return { sandbox: await entry.sandbox, created: entry !== existing };
  }

  /** Whether the session has a sandbox (built or being built). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The live sandbox of a session, if any. */
  async get(key: string): Promise<Sandbox | undefined> {
    const entry = this.entries.get(key);
    return entry ? entry.sandbox : undefined;
  }

  async release(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    clearTimeout(entry.timer);
    const sandbox = await entry.sandbox.catch(() => undefined);
    if (!sandbox) return;
    await this.options.provider.release(sandbox);
    this.options.onEvent?.({ kind: 'released', key, sandbox });
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((key) => this.release(key)));
  }

  private async ensure(key: string): Promise<Entry> {
    const existing = this.entries.get(key);
    if (existing) {
      const sandbox = await existing.sandbox.catch(() => undefined);
      if (sandbox?.alive && this.entries.get(key) === existing) return existing;
      if (this.entries.get(key) === existing) await this.release(key);
      return this.ensure(key);
    }
    const entry: Entry = { running: 0, sandbox: this.build(key) };
    this.entries.set(key, entry);
    // A failed build is forgotten so that the next exec tries again.
    entry.sandbox.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry;
  }

  private async build(key: string): Promise<Sandbox> {
    const sandbox = await this.options.provider.create(await this.options.spec(key));
    this.options.onEvent?.({ kind: 'created', key, sandbox });
    return sandbox;
  }

  private finished(key: string, entry: Entry): void {
    entry.running--;
    if (entry.running > 0 || this.entries.get(key) !== entry) return;
    entry.timer = setTimeout(() => void this.release(key), this.idleMs);
    entry.timer.unref();
  }
}
