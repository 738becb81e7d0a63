import type { CredentialKind } from './kinds.js';
import type { PutResult, SecretMetadata } from './sealer.js';

/**
 * The vault as the control plane sees it: write, rotate, delete, list names
 * and metadata — and nothing that returns a value. The Sealer is one (it holds
 * the public key and the vault store); under `tagbox up` the server gets the
 * proxy's, over its control socket, and never opens the vault itself.
 */
export interface SecretStore {
  put(name: string, value: Buffer, kind?: CredentialKind): Promise<PutResult>;
  replace(name: string, value: Buffer, kind?: CredentialKind): Promise<PutResult>;
  delete(name: string): Promise<boolean>;
  list(): Promise<SecretMetadata[]>;
  metadata(name: string): Promise<SecretMetadata | undefined>;
}
