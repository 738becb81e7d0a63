import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { failure, invalidInput } from '../errors.js';
import { keyIdOf, signCheckpoint, type Checkpoint, type CheckpointBody, type TrustedKeys } from './checkpoint.js';

/**
 * The audit signing key: an Ed25519 key that signs checkpoints of the audit
 * chain. It never goes into the database (that is the point: whoever can write
 * the database must not be able to sign). Read from TAGBOX_AUDIT_SIGNING_KEY
 * (base64 of the 32-byte private seed, e.g. `openssl rand -base64 32`) or from
 * a PEM file (PKCS#8, e.g. `openssl genpkey -algorithm ed25519`):
 * `audit.signingKeyFile`, default TAGBOX_HOME/audit-signing.key, created 0600
 * by the first writer that needs it. Replicas on one Postgres must share it.
 */
export const SIGNING_KEY_ENV = 'TAGBOX_AUDIT_SIGNING_KEY';

export type SigningKeySource = { kind: 'env'; variable: string } | { kind: 'file'; file: string };

export class SigningKey {
  readonly #privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;

  constructor(
    privateKey: KeyObject,
    readonly source: SigningKeySource,
  ) {
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
  }

  sign(body: Omit<CheckpointBody, 'keyId'>): Checkpoint {
    return signCheckpoint(this.#privateKey, { ...body, keyId: this.keyId });
  }

  /** This key as the only trusted one. */
  trusted(): TrustedKeys {
    return new Map([[this.keyId, this.publicKey]]);
  }

  publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  describe(): string {
    return this.source.kind === 'env' ? `the audit signing key from ${this.source.variable}` : `the audit signing key in ${this.source.file}`;
  }
}

export interface LoadSigningKeyOptions {
  /** Used when TAGBOX_AUDIT_SIGNING_KEY is not set. */
  file: string;
  /** Create the file (0600) when it does not exist. Verify never does. */
  create: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedSigningKey {
  key: SigningKey;
  created: boolean;
  /** Set when the key file is readable by group or others. */
  warning?: string;
}

/** TAGBOX_AUDIT_SIGNING_KEY wins over the file. Throws a TagboxError naming the source. */
export function loadSigningKey(options: LoadSigningKeyOptions): LoadedSigningKey {
  const env = options.env ?? process.env;
  const fromEnv = env[SIGNING_KEY_ENV];
  if (fromEnv !== undefined) return { key: parseSeed(fromEnv, SIGNING_KEY_ENV), created: false };
  const { file } = options;
  if (options.create) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    if (createExclusive(file, pem)) return { key: new SigningKey(privateKey, { kind: 'file', file }), created: true };
    // It existed (or another process created it a moment ago): use that one.
  }
  return readKeyFile(file);
}

function readKeyFile(file: string): LoadedSigningKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw failure(`no audit signing key: ${file} does not exist (and ${SIGNING_KEY_ENV} is not set)`, 'audit_key_missing');
    throw failure(`cannot read the audit signing key ${file}: ${code ?? (error as Error).message}`, 'audit_key_unreadable');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    // Never echo the content: it may be a real key with a typo.
    throw invalidInput(`${file}: expected an Ed25519 private key in PEM (PKCS#8), as \`openssl genpkey -algorithm ed25519\` writes it`, 'invalid_audit_key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalidInput(`${file}: expected an Ed25519 key, found ${key.asymmetricKeyType ?? 'another kind'}`, 'invalid_audit_key');
  // Group-readable is how privilege separation shares it between the server and the proxy (root:tagbox 0640).
  const loose = (statSync(file).mode & 0o007) !== 0;
  return { key: new SigningKey(key, { kind: 'file', file }), created: false, ...(loose ? { warning: `${file} is readable by others; chmod 600 it` } : {}) };
}

// PKCS#8 DER of an Ed25519 private key is this fixed prefix and the 32-byte seed (RFC 8410).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function parseSeed(text: string, variable: string): SigningKey {
  const trimmed = text.trim();
  const seed = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || seed.length !== 32 || seed.toString('base64') !== trimmed) {
    throw invalidInput(`${variable}: expected the base64 encoding of a 32-byte Ed25519 private seed (for example \`openssl rand -base64 32\`)`, 'invalid_audit_key');
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return new SigningKey(key, { kind: 'env', variable });
}

/**
 * Creates `file` with `text`, mode 0600, only if it does not exist — and never
 * visible half-written: the text goes to a private temporary file first, which
 * is then hard-linked into place (link fails if the name exists). Two first
 * runs at once thus agree on one key. False if the file existed.
 */
function createExclusive(file: string, text: string): boolean {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (error) {
    throw failure(`cannot create the audit signing key ${file}: ${(error as Error).message}`, 'audit_key_unwritable', error);
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    linkSync(tmp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw failure(`cannot create the audit signing key ${file}: ${(error as Error).message}`, 'audit_key_unwritable', error);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

/** Public keys for an auditor (`--public-key FILE`): PEM, Ed25519. */
export function readPublicKeys(files: string[]): TrustedKeys {
  const keys = new Map<string, KeyObject>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw invalidInput(`--public-key: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(text);
    } catch {
      throw invalidInput(`--public-key ${file}: expected an Ed25519 public key in PEM, as \`tagbox audit public-key\` prints it`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw invalidInput(`--public-key ${file}: expected an Ed25519 public key, found ${key.asymmetricKeyType ?? 'another kind of'} key`);
    }
    keys.set(keyIdOf(key), key);
  }
  return keys;
}
