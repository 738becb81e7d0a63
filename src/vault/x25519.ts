import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Raw 32-byte X25519 keys <-> node:crypto KeyObjects, with fixed RFC 8410
 * encodings; anything that is not exactly 32 bytes is refused. Public keys are
 * imported as JWK: on Node 20 that is several times cheaper than SPKI DER, and
 * it happens on every open (the ephemeral key).
 */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
export const X25519_KEY_BYTES = 32;

export function publicKeyFromRaw(raw: Buffer): KeyObject {
  if (raw.length !== X25519_KEY_BYTES) throw new Error('an X25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - X25519_KEY_BYTES));
}

export function privateKeyFromRaw(raw: Buffer): KeyObject {
  if (raw.length !== X25519_KEY_BYTES) throw new Error('an X25519 private key is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function rawPrivateKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - X25519_KEY_BYTES));
}
