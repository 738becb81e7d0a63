import { createCipheriv, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import { associatedData, deriveSealKey, encodeEnvelope, NONCE_BYTES, type SecretBinding } from './envelope.js';
import { publicKeyFromRaw, rawPublicKey } from './x25519.js';

/**
 * Seals a value to the vault's public key. Needs nothing secret: a fresh
 * ephemeral key pair per call, whose private half is dropped on return, so
 * not even the writer can open what it wrote.
 */
export function seal(vaultPublicKey: Buffer, binding: SecretBinding, plaintext: Buffer): Buffer {
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublic = rawPublicKey(ephemeral.publicKey);
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicKeyFromRaw(vaultPublicKey) });
  const key = deriveSealKey(shared, ephemeralPublic, vaultPublicKey);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(associatedData(binding));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const envelope = encodeEnvelope({ ephemeralPublic, nonce, ciphertext, tag: cipher.getAuthTag() });
  shared.fill(0);
  key.fill(0);
  return envelope;
}
