import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { failure, invalidInput } from '../errors.js';

/**
 * The master key: 32 random bytes that wrap the vault's X25519 private key.
 * Read from TAGBOX_MASTER_KEY (base64) or from a key file (base64, one line;
 * TAGBOX_HOME/vault/master.key unless vault.masterKeyFile says otherwise).
 *
 * The bytes live in a private field and never leave this object: callers can
 * only ask it to wrap or unwrap. Only the proxy process and the two admin
 * verbs that must (first `secret set`, `vault rotate-master`) ever load it.
 */
export const MASTER_KEY_ENV = 'TAGBOX_MASTER_KEY';
const KEY_BYTES = 32;
const WRAP_FORMAT = 1;

export type MasterKeySource = { kind: 'env'; variable: string } | { kind: 'file'; file: string };

export class MasterKey {
  readonly #bytes: Buffer;
  readonly source: MasterKeySource;

  private constructor(bytes: Buffer, source: MasterKeySource) {
    this.#bytes = bytes;
    this.source = source;
  }

  static generate(source: MasterKeySource): MasterKey {
    return new MasterKey(randomBytes(KEY_BYTES), source);
  }

  /** Strict: canonical base64 of exactly 32 bytes; surrounding whitespace is ignored. */
  static parse(text: string, source: MasterKeySource): MasterKey {
    const trimmed = text.trim();
    const bytes = Buffer.from(trimmed, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || bytes.length !== KEY_BYTES || bytes.toString('base64') !== trimmed) {
      // Never echo what was found: it may be a real key with a typo.
      const where = source.kind === 'env' ? source.variable : source.file;
      throw invalidInput(
        `${where}: expected a master key as the base64 encoding of exactly 32 random bytes (for example the output of \`openssl rand -base64 32\`)`,
        'invalid_master_key',
      );
    }
    return new MasterKey(bytes, source);
  }

  sameAs(other: MasterKey): boolean {
    return timingSafeEqual(this.#bytes, other.#bytes);
  }

  describe(): string {
    return this.source.kind === 'env' ? `the master key from ${this.source.variable}` : `the master key in ${this.source.file}`;
  }

  /** The key's text form, for writing a key file; used only when creating one. */
  toFileText(): string {
    return `${this.#bytes.toString('base64')}\n`;
  }

  /** AES-256-GCM under the master key; `context` is bound as associated data. */
  wrap(plaintext: Buffer, context: Buffer): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#bytes, nonce);
    cipher.setAAD(context);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([WRAP_FORMAT]), nonce, body, cipher.getAuthTag()]);
  }

  /** Returns undefined when this key did not wrap `wrapped` (or it was altered). */
  unwrap(wrapped: Buffer, context: Buffer): Buffer | undefined {
    if (wrapped.length < 1 + 12 + 16 + 1 || wrapped[0] !== WRAP_FORMAT) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#bytes, wrapped.subarray(1, 13));
      decipher.setAAD(context);
      decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
      return Buffer.concat([decipher.update(wrapped.subarray(13, wrapped.length - 16)), decipher.final()]);
    } catch {
      return undefined;
    }
  }
}

export interface LoadMasterKeyOptions {
  /** The key file used when TAGBOX_MASTER_KEY is not set. */
  keyFile: string;
  /** Create the key file (0600) if it does not exist: first run only. */
  create: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedMasterKey {
  key: MasterKey;
  created: boolean;
  /** Set when the key file is readable by group or others. */
  warning?: string;
}

/** TAGBOX_MASTER_KEY wins over the key file. */
export function loadMasterKey(options: LoadMasterKeyOptions): LoadedMasterKey {
  const env = options.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === '') throw invalidInput(`${MASTER_KEY_ENV} is set but empty`, 'invalid_master_key');
    return { key: MasterKey.parse(fromEnv, { kind: 'env', variable: MASTER_KEY_ENV }), created: false };
  }
  const file = options.keyFile;
  const source = { kind: 'file', file } as const;
  if (!existsSync(file)) {
    if (!options.create) {
      throw failure(`no master key: set ${MASTER_KEY_ENV} or provide the key file ${file}`, 'master_key_missing');
    }
    const key = MasterKey.generate(source);
    if (writeKeyFileExclusive(file, key)) return { key, created: true };
    // Another process created it first: use theirs.
  }
  return { ...readKeyFile(file), created: false };
}

export function readKeyFile(file: string): { key: MasterKey; warning?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw failure(`cannot read the master key file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'master_key_unreadable');
  }
  const key = MasterKey.parse(text, { kind: 'file', file });
  const mode = statSync(file).mode & 0o077;
  return mode === 0 ? { key } : { key, warning: `${file} is readable by group or others; chmod 600 it` };
}

/**
 * Creates a key file with mode 0600, failing if it exists (O_EXCL), and
 * syncs it to disk before anything is wrapped under it. Returns false if it existed.
 */
export function writeKeyFileExclusive(file: string, key: MasterKey): boolean {
  let fd: number;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    fd = openSync(file, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw failure(`cannot create the master key file ${file}: ${(error as Error).message}`, 'master_key_unwritable', error);
  }
  try {
    writeSync(fd, key.toFileText());
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}
