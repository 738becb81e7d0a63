import { homePaths } from '../../src/home.js';
import type { StoreLocation } from '../../src/store/connect.js';
import { loadMasterKey, type MasterKey } from '../../src/vault/master-key.js';
import { Opener } from '../../src/vault/private/opener.js';
import { openVaultStore } from '../../src/vault/store.js';
import type { TestBackend } from '../helpers/backends.js';
import { memorySink } from './harness.js';

/** Where a `tagbox` child process with backend.env keeps its vault. */
export function cliVaultLocation(backend: TestBackend): StoreLocation {
  return backend.location.dialect === 'sqlite'
    ? { dialect: 'sqlite', file: homePaths(backend.home).vaultDatabase }
    : { ...backend.location, schema: `${backend.location.schema}_vault` };
}

export function cliMasterKey(backend: TestBackend, keyFile = homePaths(backend.home).masterKey): MasterKey {
  return loadMasterKey({ keyFile, create: false, env: {} }).key;
}

/** Opens one secret of a CLI-made vault in-process, as the proxy would. */
export async function openWith(backend: TestBackend, key: MasterKey, name: string): Promise<string> {
  const store = await openVaultStore(cliVaultLocation(backend));
  try {
    const opener = await Opener.unlock(store, key, { audit: memorySink() });
    const { value } = await opener.open(name, { connection: 'test' });
    await opener.close();
    return value;
  } finally {
    await store.close();
  }
}
