import type { TagboxConfig } from '../../config/schema.js';
import { homePaths } from '../../home.js';
import { initializeVault } from '../bootstrap.js';
import type { AuditSink, CredentialResolver } from '../credentials.js';
import { loadMasterKey, type LoadedMasterKey } from '../master-key.js';
import { openVaultStore, vaultStoreLocation } from '../store.js';
import { Opener } from './opener.js';
import { createCredentialResolver } from './resolver.js';
import { createTokenHttpClient, type TokenHttpClient } from './token-http.js';

export interface ProxyVault {
  opener: Opener;
  resolver: CredentialResolver;
  close(): Promise<void>;
}

export interface OpenProxyVaultOptions {
  home: string;
  config: TagboxConfig;
  audit: AuditSink;
  /** Defaults to HTTPS with upstream.caFile and upstream.connectTo from the config. */
  http?: TokenHttpClient;
  env?: NodeJS.ProcessEnv;
  /** Called with a warning about the key file's permissions, if any. */
  warn?: (message: string) => void;
  cacheValues?: boolean;
  /** The proxy's listen addresses: token fetches refuse them like its interface addresses. */
  selfAddresses?: string[];
}

/**
 * What the proxy process calls once at start: opens the vault store, creates
 * the key pair on a first run, unlocks the private key with the master key and
 * returns the resolver. Fails (and the proxy must then block every request
 * that needs a credential) if the master key is missing or wrong.
 */
export async function openProxyVault(options: OpenProxyVaultOptions): Promise<ProxyVault> {
  const { home, config } = options;
  const keyFile = config.vault.masterKeyFile ?? homePaths(home).masterKey;
  const store = await openVaultStore(vaultStoreLocation(home, config));
  try {
    // The key file is created only for a vault that has no key pair yet; for an
    // existing vault a missing key is an error, never a fresh (useless) key.
    let loaded: LoadedMasterKey | undefined;
    const masterKey = (create: boolean) => (loaded ??= loadMasterKey({ keyFile, create, env: options.env })).key;
    await initializeVault(store, () => masterKey(true));
    const key = masterKey(false);
    if (loaded?.warning) options.warn?.(loaded.warning);
    const opener = await Opener.unlock(store, key, { audit: options.audit, cacheValues: options.cacheValues });
    const http =
      options.http ?? createTokenHttpClient({ caFile: config.upstream.caFile, connectTo: config.upstream.connectTo, ...(options.selfAddresses ? { selfAddresses: options.selfAddresses } : {}) });
    const resolver = createCredentialResolver({ opener, http });
    return {
      opener,
      resolver,
      close: async () => {
        await opener.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
