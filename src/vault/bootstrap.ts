import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { MasterKey } from './master-key.js';
import type { VaultStore } from './store.js';
import { wrappingContext } from './wrapping.js';
import { rawPrivateKey, rawPublicKey } from './x25519.js';

/**
 * First run: creates the vault's X25519 key pair and stores the private key
 * wrapped by the master key. The master key is asked for only when there is
 * no key pair yet; the fresh private key is wrapped and dropped here, so the
 * caller gets the public key and nothing else.
 */
export async function initializeVault(store: VaultStore, getMasterKey: () => MasterKey): Promise<{ publicKey: Buffer; created: boolean }> {
  const existing = await store.db.selectFrom('vault_keypair').select('public_key').where('id', '=', 1).executeTakeFirst();
  if (existing) return { publicKey: Buffer.from(existing.public_key, 'base64'), created: false };

  const masterKey = getMasterKey();
  const pair = generateKeyPairSync('x25519');
  const publicKey = rawPublicKey(pair.publicKey);
  const privateRaw = rawPrivateKey(pair.privateKey);
  const wrapped = masterKey.wrap(privateRaw, wrappingContext(publicKey));
  privateRaw.fill(0);
  const now = new Date().toISOString();

  const created = await store.db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('vault_keypair')
      .values({ id: 1, public_key: publicKey.toString('base64'), created_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) !== 1) return false; // another process won the race
    await trx.insertInto('vault_key_wrappings').values({ id: randomUUID(), wrapped_private_key: wrapped.toString('base64'), created_at: now }).execute();
    return true;
  });
  if (created) return { publicKey, created };
  const row = await store.db.selectFrom('vault_keypair').select('public_key').where('id', '=', 1).executeTakeFirstOrThrow();
  return { publicKey: Buffer.from(row.public_key, 'base64'), created: false };
}
