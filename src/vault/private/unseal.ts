import { createDecipheriv, diffieHellman, type KeyObject } from 'node:crypto';
import { associatedData, decodeEnvelope, deriveSealKey, type SecretBinding } from '../envelope.js';
import { publicKeyFromRaw } from '../x25519.js';

/**
 * The inverse of seal(): needs the vault's private key. Returns undefined when
 * the envelope is malformed or does not authenticate under this binding; the
 * caller turns that into a fail-closed error.
 */
export function unseal(privateKey: KeyObject, vaultPublicKey: Buffer, binding: SecretBinding, envelope: Buffer): Buffer | undefined {
  const parts = decodeEnvelope(envelope);
  if (!parts) return undefined;
  try {
    const shared = diffieHellman({ privateKey, publicKey: publicKeyFromRaw(parts.ephemeralPublic) });
    const key = deriveSealKey(shared, parts.ephemeralPublic, vaultPublicKey);
    const decipher = createDecipheriv('aes-256-gcm', key, parts.nonce);
    decipher.setAAD(associatedData(binding));
    decipher.setAuthTag(parts.tag);
    const plaintext = Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
    shared.fill(0);
    key.fill(0);
    return plaintext;
  } catch {
    return undefined;
  }
}
