import type { KeyObject } from 'node:crypto';
import { failure, isTagboxError } from '../../errors.js';
import type { AuditSink, CredentialContext } from '../credentials.js';
import { type CredentialKind, isCredentialKind } from '../kinds.js';
import type { MasterKey } from '../master-key.js';
import type { VaultStore } from '../store.js';
import { LastUsedRecorder } from './last-used.js';
import { unlockPrivateKey } from './unlock.js';
import { unseal } from './unseal.js';

export interface OpenedSecret {
  name: string;
  version: number;
  kind: CredentialKind;
  /** The value (static) or the credential document as JSON (dynamic kinds). */
  value: string;
}

export interface OpenerOptions {
  audit: AuditSink;
  /**
   * Keep opened values in memory keyed by (name, version, envelope), so that a
   * repeat open skips X25519 + HKDF + GCM. The row is still read on every open,
   * so rotation, deletion and tampering take effect at once. Default true.
   */
  cacheValues?: boolean;
  /** How often "last used" is written (coalesced per secret). Default 1000 ms. */
  lastUsedFlushMs?: number;
}

interface SecretRow {
  kind: string;
  version: number | string | bigint;
  envelope: string;
}

interface CachedValue {
  version: number;
  kind: string;
  envelope: string;
  value: string;
}

/**
 * The read face of the vault: opens a secret at the moment of need. It can only
 * be made with the master key (Opener.unlock), and only the proxy process makes
 * one. Every open, good or failed, is a credential-use audit event naming the
 * secret, version, connection and session — never the value.
 */
export class Opener {
  readonly #store: VaultStore;
  readonly #privateKey: KeyObject;
  readonly #publicKey: Buffer;
  readonly #audit: AuditSink;
  readonly #cache: Map<string, CachedValue> | undefined;
  readonly #lastUsed: LastUsedRecorder;
  /** SQLite: the row read as a statement prepared once (through Kysely it was compiled and prepared per open). */
  readonly #readRow: ((name: string) => SecretRow | undefined) | undefined;

  private constructor(store: VaultStore, privateKey: KeyObject, publicKey: Buffer, options: OpenerOptions) {
    this.#store = store;
    const read = store.sqlite?.prepare<[string], SecretRow>('select kind, version, envelope from secrets where name = ?');
    this.#readRow = read ? (name) => read.get(name) : undefined;
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#audit = options.audit;
    this.#cache = options.cacheValues === false ? undefined : new Map();
    this.#lastUsed = new LastUsedRecorder(store, options.lastUsedFlushMs);
  }

  static async unlock(store: VaultStore, masterKey: MasterKey, options: OpenerOptions): Promise<Opener> {
    const { privateKey, publicKey } = await unlockPrivateKey(store, masterKey);
    return new Opener(store, privateKey, publicKey, options);
  }

  async open(name: string, ctx: CredentialContext): Promise<OpenedSecret> {
    let opened: OpenedSecret;
    try {
      opened = await this.#open(name);
    } catch (error) {
      const reason = isTagboxError(error) ? error.message : `vault error: ${(error as Error).message}`;
      await this.#audit.append({ type: 'credential-use', outcome: 'failed', secret: name, reason, ...auditContext(ctx) });
      throw isTagboxError(error) ? error : failure(reason, 'vault_unavailable', error);
    }
    await this.#audit.append({
      type: 'credential-use',
      outcome: 'opened',
      secret: name,
      version: opened.version,
      kind: opened.kind,
      ...auditContext(ctx),
    });
    this.#lastUsed.mark(name, new Date().toISOString());
    return opened;
  }

  /** Writes pending "last used" marks. The store belongs to the caller. */
  async close(): Promise<void> {
    await this.#lastUsed.close();
    this.#cache?.clear();
  }

  async #open(name: string): Promise<OpenedSecret> {
    let row: SecretRow | undefined;
    try {
      row = this.#readRow ? this.#readRow(name) : await this.#store.db.selectFrom('secrets').select(['kind', 'version', 'envelope']).where('name', '=', name).executeTakeFirst();
    } catch (error) {
      throw failure(`the vault is unavailable: ${(error as Error).message}`, 'vault_unavailable', error);
    }
    if (!row) throw failure(`secret "${name}" not found in the vault`, 'secret_not_found');
    const version = Number(row.version);
    if (!isCredentialKind(row.kind)) throw failure(`secret "${name}" has an unknown kind; the vault has been tampered with`, 'secret_tampered');

    const cached = this.#cache?.get(name);
    if (cached && cached.version === version && cached.kind === row.kind && cached.envelope === row.envelope) {
      return { name, version, kind: row.kind, value: cached.value };
    }
    const plaintext = unseal(this.#privateKey, this.#publicKey, { name, version, kind: row.kind }, Buffer.from(row.envelope, 'base64'));
    if (!plaintext) {
      throw failure(
        `secret "${name}" (version ${version}) failed to open: its ciphertext was altered or does not belong to this name, version and kind`,
        'secret_tampered',
      );
    }
    const value = plaintext.toString('utf8');
    plaintext.fill(0);
    this.#cache?.set(name, { version, kind: row.kind, envelope: row.envelope, value });
    return { name, version, kind: row.kind, value };
  }
}

function auditContext(ctx: CredentialContext): Record<string, string> {
  const out: Record<string, string> = { connection: ctx.connection, actor: 'proxy' };
  if (ctx.bundle !== undefined) out.bundle = ctx.bundle;
  if (ctx.session !== undefined) out.session = ctx.session;
  return out;
}
