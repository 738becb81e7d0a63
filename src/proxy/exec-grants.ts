import { randomBytes } from 'node:crypto';
import type { Bundle } from '../policy/bundle-schema.js';

/**
 * Bundles that a `tagbox exec` client handed the proxy itself (its grant
 * socket: root or the proxy's own user, by SO_PEERCRED), waiting for the
 * server to apply them to the listener of the sandbox it runs that command in.
 * The server only ever holds the grant's name: it cannot make up bundles, so it
 * cannot point a vault secret at a host that no admin and no exec client chose.
 * A grant is used once, and expires unused after `ttlMs`.
 */
export class ExecGrants {
  private readonly grants = new Map<string, { bundles: Bundle[]; expires: number }>();

  constructor(
    private readonly options: { ttlMs?: number; max?: number; now?: () => number } = {},
  ) {}

  /** A new grant for `bundles`; refused when `max` are outstanding (a client looping cannot fill memory). */
  issue(bundles: Bundle[]): string {
    this.sweep();
    if (this.grants.size >= (this.options.max ?? 64)) throw new Error('too many exec grants outstanding; try again shortly');
    const id = randomBytes(18).toString('base64url');
    this.grants.set(id, { bundles, expires: this.now() + (this.options.ttlMs ?? 60_000) });
    return id;
  }

  /** The grant's bundles, once: a used, expired or unknown grant is undefined. */
  take(id: string): Bundle[] | undefined {
    const grant = this.grants.get(id);
    this.grants.delete(id);
    if (!grant || grant.expires <= this.now()) return undefined;
    return grant.bundles;
  }

  get size(): number {
    this.sweep();
    return this.grants.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, grant] of this.grants) if (grant.expires <= now) this.grants.delete(id);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
