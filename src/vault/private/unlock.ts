import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { failure } from '../../errors.js';
import type { MasterKey } from '../master-key.js';
import type { VaultStore } from '../store.js';
import { wrappingContext } from '../wrapping.js';
import { privateKeyFromRaw, rawPublicKey } from '../x25519.js';

export interface UnlockedKey {
  privateKey: KeyObject;
  publicKey: Buffer;
  wrappingId: string;
}

/**
 * Unwraps the vault's private key with the master key. Tries each stored
 * wrapping (more than one only mid-rotation) and checks that the key found
 * matches the stored public key. Fails closed with a message that says which
 * master key was tried, never anything about its bytes.
 */
export async function unlockPrivateKey(store: VaultStore, masterKey: MasterKey): Promise<UnlockedKey> {
  let keypair;
  let wrappings;
  try {
    keypair = await store.db.selectFrom('vault_keypair').select('public_key').where('id', '=', 1).executeTakeFirst();
    wrappings = await store.db.selectFrom('vault_key_wrappings').select(['id', 'wrapped_private_key']).orderBy('created_at', 'desc').execute();
  } catch (error) {
    throw failure(`the vault is unavailable: ${(error as Error).message}`, 'vault_unavailable', error);
  }
  if (!keypair) throw failure('the vault has no key pair yet; run `tagbox vault init`', 'vault_not_initialized');
  const publicKey = Buffer.from(keypair.public_key, 'base64');
  const context = wrappingContext(publicKey);
  for (const wrapping of wrappings) {
    const raw = masterKey.unwrap(Buffer.from(wrapping.wrapped_private_key, 'base64'), context);
    if (!raw) continue;
    const privateKey = privateKeyFromRaw(raw);
    raw.fill(0);
    if (!rawPublicKey(createPublicKey(privateKey)).equals(publicKey)) {
      throw failure('the vault private key does not match its public key: the vault has been tampered with', 'vault_tampered');
    }
    return { privateKey, publicKey, wrappingId: wrapping.id };
  }
  throw failure(
    `${masterKey.describe()} does not open this vault: it is the wrong key, or the wrapped private key was altered`,
    'master_key_mismatch',
  );
}
