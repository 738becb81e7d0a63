import type { AuditEventInput } from '../audit/events.js';

/**
 * The types the proxy programs against. Types only: the implementations that
 * can produce a value live in ./private/ and are import-restricted.
 */

/** For whom a secret is opened; recorded in the credential-use audit event. */
export interface CredentialContext {
  connection: string;
  bundle?: string;
  session?: string;
}

/** A request the proxy is about to forward, as the signer needs to see it. */
export interface SignableRequest {
  method: string;
  url: URL;
  /** Header names in any case; one value per name. */
  headers: Record<string, string>;
  body: Buffer;
}

export type ResolvedCredential =
  /** static, github-app token, oauth2 token: the proxy formats it per the connection's inject. */
  | { kind: 'value'; value: string; version: number }
  /** aws-sigv4: headers to set on the request, replacing any the client sent (case-insensitively). */
  | { kind: 'sign'; version: number; sign(req: SignableRequest): Record<string, string> };

/** A GitHub App installation token narrowed when it is minted (POST …/access_tokens {repositories, permissions}). */
export interface MintOptions {
  repositories?: readonly string[];
  permissions?: Readonly<Record<string, string>>;
}

export interface CredentialResolver {
  /**
   * Throws (fail closed) when the secret is missing, tampered, or a token
   * cannot be fetched — or when `mint` asks for a narrowing its kind cannot give.
   */
  resolve(secretName: string, ctx: CredentialContext, mint?: MintOptions): Promise<ResolvedCredential>;
}

/** Where credential-use events go: the AuditLog, or the proxy's own batching writer. */
export interface AuditSink {
  append(event: AuditEventInput): Promise<unknown>;
}
