import type { VaultStore } from '../store.js';

/**
 * "Last used" without a write per open: marks are coalesced in memory and
 * written at most once per interval per secret, off the request path.
 */
export class LastUsedRecorder {
  readonly #pending = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(private readonly store: VaultStore, intervalMs = 1000) {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  mark(name: string, at: string): void {
    this.#pending.set(name, at);
  }

  /** Writes the pending marks; a failed write is retried at the next flush. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending];
      this.#pending.clear();
      for (const [name, at] of batch) {
        try {
          await this.store.db
            .updateTable('secrets')
            .set({ last_used_at: at })
            .where('name', '=', name)
            .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
            .execute();
        } catch {
          if (!this.#pending.has(name)) this.#pending.set(name, at);
        }
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
