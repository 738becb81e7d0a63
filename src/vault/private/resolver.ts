import { describeError, failure, isTagboxError } from '../../errors.js';
import type { CredentialContext, CredentialResolver, MintOptions, ResolvedCredential, SignableRequest } from '../credentials.js';
import { parseCredentialDocument } from '../kinds.js';
import { fetchInstallationToken } from './github-app.js';
import { fetchClientCredentialsToken } from './oauth2.js';
import type { Opener } from './opener.js';
import { signSigV4 } from './sigv4.js';
import { TokenCache } from './token-cache.js';
import type { TokenHttpClient } from './token-http.js';

export interface ResolverOptions {
  opener: Opener;
  http: TokenHttpClient;
  now?: () => number;
}

/**
 * Turns a secret name into what the proxy injects, at request time. Every
 * resolve opens the secret (so every use is audited and a rotation or removal
 * takes effect at once); dynamic kinds then use a cached token, or fetch one.
 */
export function createCredentialResolver(options: ResolverOptions): CredentialResolver {
  const now = options.now ?? Date.now;
  const tokens = new TokenCache(now);
  // Parsed documents per (name, version): validating a GitHub App key is too costly to repeat per request.
  const parsed = new Map<string, { version: number; text: string; cred: unknown }>();
  const document = <T>(secret: { name: string; version: number; value: string }, parse: (text: string) => T): T => {
    const hit = parsed.get(secret.name);
    if (hit && hit.version === secret.version && hit.text === secret.value) return hit.cred as T;
    const cred = parse(secret.value);
    parsed.set(secret.name, { version: secret.version, text: secret.value, cred });
    return cred;
  };
  return {
    async resolve(secretName: string, ctx: CredentialContext, mint?: MintOptions): Promise<ResolvedCredential> {
      const secret = await options.opener.open(secretName, ctx);
      const { version } = secret;
      const narrowed = mint !== undefined && (mint.repositories !== undefined || mint.permissions !== undefined);
      // A narrowing that cannot be applied is not silently dropped: the request is not sent.
      if (narrowed && secret.kind !== 'github-app') {
        throw failure(`secret "${secretName}" is ${secret.kind}: a connection that narrows its token to repositories or permissions needs a github-app secret`, 'unsupported_kind');
      }
      switch (secret.kind) {
        case 'static':
          return { kind: 'value', value: secret.value, version };
        case 'github-app': {
          const cred = document(secret, (t) => parseCredentialDocument('github-app', t));
          // One token per narrowing: a token minted for other repositories must never be reused here.
          const key = narrowed ? `${secretName}\u0000${JSON.stringify([mint.repositories ?? null, sortedEntries(mint.permissions)])}` : secretName;
          const value = await tokens.get(key, version, () => asTokenFailure(secretName, fetchInstallationToken(cred, options.http, now(), narrowed ? mint : undefined)));
          return { kind: 'value', value, version };
        }
        case 'oauth2-client-credentials': {
          const cred = document(secret, (t) => parseCredentialDocument('oauth2-client-credentials', t));
          const value = await tokens.get(secretName, version, () => asTokenFailure(secretName, fetchClientCredentialsToken(cred, options.http, now())));
          return { kind: 'value', value, version };
        }
        case 'aws-sigv4': {
          const cred = document(secret, (t) => parseCredentialDocument('aws-sigv4', t));
          return { kind: 'sign', version, sign: (req: SignableRequest) => signSigV4(req, cred, { date: new Date(now()) }).headers };
        }
        default:
          throw failure(`secret "${secretName}" has an unsupported kind`, 'unsupported_kind');
      }
    },
  };
}

/**
 * Every failure of a token fetch carries the code `token_fetch_failed`, so the
 * proxy can show the caller one generic reason (the detail would let it probe
 * the network through the token endpoint) and keep the detail for the audit.
 */
async function asTokenFailure<T>(secretName: string, fetch: Promise<T>): Promise<T> {
  try {
    return await fetch;
  } catch (error) {
    if (isTagboxError(error) && error.code === 'token_fetch_failed') throw error;
    throw failure(`token for secret "${secretName}" could not be fetched: ${describeError(error)}`, 'token_fetch_failed', error);
  }
}

function sortedEntries(record: Readonly<Record<string, string>> | undefined): Array<[string, string]> | null {
  return record ? Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : null;
}
