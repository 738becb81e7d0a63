import { setTimeout as sleep } from 'node:timers/promises';
import { failure } from '../errors.js';
import { type CredentialKind, prepareSecretValue } from './kinds.js';
import { validateSecretName, validateSecretSize } from './names.js';
import { seal } from './seal.js';
import type { VaultStore } from './store.js';

export interface SecretMetadata {
  name: string;
  kind: CredentialKind;
  version: number;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
}

export interface PutResult {
  name: string;
  kind: CredentialKind;
  version: number;
  /** True when this put created the secret; false when it made a new version. */
  created: boolean;
}

/**
 * The write-only face of the vault: all the control plane ever gets. It holds
 * the vault's public key and the store, nothing else; it has no method that
 * returns a value, and nothing it holds can open one (see docs/VAULT.md).
 */
export class Sealer {
  readonly #store: VaultStore;
  readonly #publicKey: Buffer;

  private constructor(store: VaultStore, publicKey: Buffer) {
    this.#store = store;
    this.#publicKey = publicKey;
  }

  /** Reads the public key of an initialised vault (see bootstrap.ts for the first run). */
  static async connect(store: VaultStore): Promise<Sealer> {
    const row = await store.db.selectFrom('vault_keypair').select('public_key').where('id', '=', 1).executeTakeFirst();
    if (!row) throw failure('the vault has no key pair yet; run `tagbox vault init`', 'vault_not_initialized');
    return new Sealer(store, Buffer.from(row.public_key, 'base64'));
  }

  /** The public key (raw X25519, 32 bytes): anyone may hold it. */
  get publicKey(): Buffer {
    return Buffer.from(this.#publicKey);
  }

  /**
   * Creates the secret, or seals a new version of it (rotation). Safe under
   * concurrent writers: the version is claimed with a compare-and-set, and a
   * writer that lost the race seals again for the next version.
   */
  async put(name: string, value: Buffer, kind: CredentialKind = 'static'): Promise<PutResult> {
    return this.#write(name, value, kind, 'put');
  }

  /** Like put, but the secret must already exist. */
  async replace(name: string, value: Buffer, kind?: CredentialKind): Promise<PutResult> {
    return this.#write(name, value, kind, 'replace');
  }

  async delete(name: string): Promise<boolean> {
    validateSecretName(name);
    const result = await this.#store.db.deleteFrom('secrets').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async list(): Promise<SecretMetadata[]> {
    const rows = await this.#store.db
      .selectFrom('secrets')
      .select(['name', 'kind', 'version', 'created_at', 'updated_at', 'last_used_at'])
      .orderBy('name')
      .execute();
    return rows.map(toMetadata);
  }

  async metadata(name: string): Promise<SecretMetadata | undefined> {
    const row = await this.#store.db
      .selectFrom('secrets')
      .select(['name', 'kind', 'version', 'created_at', 'updated_at', 'last_used_at'])
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toMetadata(row);
  }

  async #write(name: string, value: Buffer, kind: CredentialKind | undefined, mode: 'put' | 'replace'): Promise<PutResult> {
    validateSecretName(name);
    validateSecretSize(value);
    const db = this.#store.db;
    for (let attempt = 0; attempt < 200; attempt++) {
      const current = await db.selectFrom('secrets').select(['version', 'kind']).where('name', '=', name).executeTakeFirst();
      if (!current && mode === 'replace') throw failure(`secret "${name}" not found`, 'secret_not_found');
      const effectiveKind = kind ?? (current?.kind as CredentialKind | undefined) ?? 'static';
      const plaintext = prepareSecretValue(effectiveKind, value);
      const version = (current?.version ?? 0) + 1;
      const envelope = seal(this.#publicKey, { name, version, kind: effectiveKind }, plaintext).toString('base64');
      const now = new Date().toISOString();
      const result = current
        ? await db
            .updateTable('secrets')
            .set({ kind: effectiveKind, version, envelope, updated_at: now })
            .where('name', '=', name)
            .where('version', '=', current.version)
            .executeTakeFirst()
            .then((r) => Number(r.numUpdatedRows))
        : await db
            .insertInto('secrets')
            .values({ name, kind: effectiveKind, version, envelope, created_at: now, updated_at: now, last_used_at: null })
            .onConflict((oc) => oc.column('name').doNothing())
            .executeTakeFirst()
            .then((r) => Number(r.numInsertedOrUpdatedRows ?? 0));
      if (result === 1) return { name, kind: effectiveKind, version, created: !current };
      // Lost the race to another writer: back off a little and seal for the next version.
      await sleep(Math.random() * Math.min(50, 2 ** Math.min(attempt, 5)));
    }
    throw failure(`could not write secret "${name}": too many concurrent writers`, 'write_conflict');
  }
}

function toMetadata(row: { name: string; kind: string; version: number; created_at: string; updated_at: string; last_used_at: string | null }): SecretMetadata {
  return {
    name: row.name,
    kind: row.kind as CredentialKind,
    version: Number(row.version),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
  };
}

