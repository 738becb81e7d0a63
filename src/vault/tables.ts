/**
 * The vault's own tables (its own SQLite file, or its own Postgres schema).
 * Binary values are base64 text so that both dialects store them alike.
 * There is no column for a value, a hash of a value, or its length.
 */
export interface VaultKeypairTable {
  /** Always 1: one key pair per vault. */
  id: number;
  /** Raw X25519 public key, base64. Public: it only lets one seal. */
  public_key: string;
  created_at: string;
}

export interface VaultKeyWrappingsTable {
  id: string;
  /** The X25519 private key, AES-256-GCM-wrapped by a master key, base64. */
  wrapped_private_key: string;
  created_at: string;
}

export interface SecretsTable {
  name: string;
  /** 'static' | 'github-app' | 'oauth2-client-credentials' | 'aws-sigv4' */
  kind: string;
  version: number;
  /** The sealed value (see envelope.ts), base64. */
  envelope: string;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
}

export interface VaultDatabase {
  vault_keypair: VaultKeypairTable;
  vault_key_wrappings: VaultKeyWrappingsTable;
  secrets: SecretsTable;
}
