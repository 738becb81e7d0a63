/**
 * Short-lived tokens fetched with a stored credential (GitHub App installation
 * tokens, OAuth 2.0 access tokens), cached until shortly before they expire.
 * Concurrent callers for the same missing or expiring token share one fetch;
 * a failed fetch is not cached, so the next request tries again.
 */
export interface FetchedToken {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

interface Entry {
  /** The secret version the token was fetched with: a rotation invalidates it. */
  version: number;
  token: string;
  refreshAt: number;
}

/** Refresh this long before expiry: 5 minutes, or half the lifetime of a short token. */
export function refreshMargin(lifetimeMs: number): number {
  return Math.min(5 * 60_000, Math.max(0, lifetimeMs / 2));
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, { version: number; promise: Promise<string> }>();

  constructor(private readonly now: () => number = Date.now) {}

  async get(key: string, version: number, fetch: () => Promise<FetchedToken>): Promise<string> {
    const entry = this.#entries.get(key);
    if (entry && entry.version === version && this.now() < entry.refreshAt) return entry.token;
    const running = this.#inflight.get(key);
    if (running && running.version === version) return running.promise;

    const startedAt = this.now();
    const promise = fetch()
      .then(({ token, expiresAt }) => {
        this.#entries.set(key, { version, token, refreshAt: expiresAt - refreshMargin(expiresAt - startedAt) });
        return token;
      })
      .finally(() => {
        if (this.#inflight.get(key)?.promise === promise) this.#inflight.delete(key);
      });
    this.#inflight.set(key, { version, promise });
    return promise;
  }

  clear(): void {
    this.#entries.clear();
  }
}
