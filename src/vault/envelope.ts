import { hkdfSync } from 'node:crypto';
import { X25519_KEY_BYTES } from './x25519.js';

/**
 * The sealed form of one secret version, and what binds it to its place.
 *
 *   envelope = format(1) || ephemeral X25519 public key(32) || nonce(12) || AES-256-GCM ciphertext || tag(16)
 *   key      = HKDF-SHA256(ikm = X25519(ephemeral, vault), salt = ephemeral pub || vault pub, info = INFO)
 *   aad      = "tagbox-vault/v1" NUL name NUL version NUL kind
 *
 * The associated data makes a ciphertext open only under the name, version and
 * kind it was sealed for: a row copied to another name, or a version number
 * edited in place, fails authentication.
 */
export const ENVELOPE_FORMAT = 1;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const HEADER_BYTES = 1 + X25519_KEY_BYTES + NONCE_BYTES;
const INFO = Buffer.from('tagbox-vault/v1 seal aes-256-gcm');

export interface SecretBinding {
  name: string;
  version: number;
  kind: string;
}

export function associatedData(binding: SecretBinding): Buffer {
  return Buffer.from(`tagbox-vault/v1\0${binding.name}\0${binding.version}\0${binding.kind}`, 'utf8');
}

export function deriveSealKey(sharedSecret: Buffer, ephemeralPublic: Buffer, vaultPublic: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', sharedSecret, Buffer.concat([ephemeralPublic, vaultPublic]), INFO, 32));
}

export interface EnvelopeParts {
  ephemeralPublic: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function encodeEnvelope(parts: EnvelopeParts): Buffer {
  return Buffer.concat([Buffer.from([ENVELOPE_FORMAT]), parts.ephemeralPublic, parts.nonce, parts.ciphertext, parts.tag]);
}

/** Structure only; authenticity is decided by the GCM tag when opening. */
export function decodeEnvelope(envelope: Buffer): EnvelopeParts | undefined {
  if (envelope.length < HEADER_BYTES + TAG_BYTES + 1 || envelope[0] !== ENVELOPE_FORMAT) return undefined;
  return {
    ephemeralPublic: envelope.subarray(1, 1 + X25519_KEY_BYTES),
    nonce: envelope.subarray(1 + X25519_KEY_BYTES, HEADER_BYTES),
    ciphertext: envelope.subarray(HEADER_BYTES, envelope.length - TAG_BYTES),
    tag: envelope.subarray(envelope.length - TAG_BYTES),
  };
}
