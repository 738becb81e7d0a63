import type { AuditEventInput } from '../../src/audit/events.js';
import type { StoreLocation } from '../../src/store/connect.js';
import { initializeVault } from '../../src/vault/bootstrap.js';
import type { AuditSink } from '../../src/vault/credentials.js';
import { MasterKey } from '../../src/vault/master-key.js';
import { Opener, type OpenerOptions } from '../../src/vault/private/opener.js';
import { Sealer } from '../../src/vault/sealer.js';
import { openVaultStore, type VaultStore } from '../../src/vault/store.js';

/** An audit sink that keeps events in memory, for assertions. */
export function memorySink(): AuditSink & { events: AuditEventInput[] } {
  const events: AuditEventInput[] = [];
  return { events, append: async (event) => void events.push(event) };
}

export interface VaultHarness {
  store: VaultStore;
  masterKey: MasterKey;
  sealer: Sealer;
  audit: ReturnType<typeof memorySink>;
  opener(options?: Partial<OpenerOptions>): Promise<Opener>;
  close(): Promise<void>;
}

/** A fresh, initialised vault at `location` with an in-memory master key. */
export async function createVaultHarness(location: StoreLocation): Promise<VaultHarness> {
  const store = await openVaultStore(location);
  const masterKey = MasterKey.generate({ kind: 'env', variable: 'TEST_MASTER_KEY' });
  await initializeVault(store, () => masterKey);
  const sealer = await Sealer.connect(store);
  const audit = memorySink();
  const openers: Opener[] = [];
  return {
    store,
    masterKey,
    sealer,
    audit,
    async opener(options = {}) {
      const opener = await Opener.unlock(store, masterKey, { audit, ...options });
      openers.push(opener);
      return opener;
    },
    async close() {
      for (const o of openers) await o.close();
      await store.close();
    },
  };
}
