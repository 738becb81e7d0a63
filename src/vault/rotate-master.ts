import { randomUUID } from 'node:crypto';
import { failure, invalidInput } from '../errors.js';
import type { MasterKey } from './master-key.js';
import { unlockPrivateKey } from './private/unlock.js';
import type { VaultStore } from './store.js';
import { wrappingContext } from './wrapping.js';
import { rawPrivateKey } from './x25519.js';

export interface RotateMasterSteps {
  /**
   * Runs after the new wrapping is committed and before the old one is removed:
   * the moment to put the new key in place (e.g. rename a key file). If it
   * throws, the old wrapping stays and the vault still opens with the old key.
   */
  installNewKey?: () => Promise<void> | void;
}

/**
 * Re-wraps the vault's private key under a new master key. The X25519 key pair
 * and every sealed secret stay as they are. Crash-safe by ordering: the new
 * wrapping is added first, so at every instant the vault holds a wrapping for
 * whichever key is installed; only after the new key has been installed and
 * shown to open the vault are the old wrappings removed.
 */
export async function rotateMasterKey(store: VaultStore, oldKey: MasterKey, newKey: MasterKey, steps: RotateMasterSteps = {}): Promise<void> {
  if (oldKey.sameAs(newKey)) throw invalidInput('the new master key is the same as the current one', 'same_master_key');
  const unlocked = await unlockPrivateKey(store, oldKey);
  const raw = rawPrivateKey(unlocked.privateKey);
  const wrapped = newKey.wrap(raw, wrappingContext(unlocked.publicKey));
  raw.fill(0);
  const id = randomUUID();
  await store.db
    .insertInto('vault_key_wrappings')
    .values({ id, wrapped_private_key: wrapped.toString('base64'), created_at: new Date().toISOString() })
    .execute();

  await steps.installNewKey?.();

  const row = await store.db.selectFrom('vault_key_wrappings').select('wrapped_private_key').where('id', '=', id).executeTakeFirst();
  const check = row && newKey.unwrap(Buffer.from(row.wrapped_private_key, 'base64'), wrappingContext(unlocked.publicKey));
  if (!check) throw failure('master key rotation: the new wrapping did not read back; the old key still opens the vault', 'rotation_failed');
  check.fill(0);
  await store.db.deleteFrom('vault_key_wrappings').where('id', '!=', id).execute();
}
