import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Logger } from '../../log.js';
import type { WebConfig } from './web-config.js';

export type OidcConfig = NonNullable<WebConfig['oidc']>;

// After a failed discovery, a sign-in attempt tries again at most this often.
const RETRY_EVERY_MS = 30_000;

/**
 * The OIDC provider as discovered. Discovery runs at start in the background:
 * a provider that is down (or misconfigured) never stops the server — it is
 * logged, `/auth/oidc/start` answers 503 saying why, and the next attempt
 * after a while discovers again.
 */
export class OidcProvider {
  private configuration: client.Configuration | undefined;
  private failure: string | undefined;
  private lastAttempt = 0;
  private pending: Promise<void> | undefined;

  constructor(
    readonly settings: OidcConfig,
    private readonly logger: Logger,
  ) {}

  start(): void {
    void this.discover();
  }

  /** The discovered configuration, or an explanation of why there is none. */
  async get(): Promise<{ config: client.Configuration } | { error: string }> {
    if (this.configuration) return { config: this.configuration };
    if (this.pending) await this.pending;
    else if (Date.now() - this.lastAttempt >= RETRY_EVERY_MS) await this.discover();
    if (this.configuration) return { config: this.configuration };
    return { error: this.failure ?? 'discovery has not finished yet' };
  }

  private discover(): Promise<void> {
    this.lastAttempt = Date.now();
    this.pending = (async () => {
      try {
        const fetcher = this.fetcher();
        const auth = this.settings.clientSecret ? client.ClientSecretBasic(this.settings.clientSecret) : client.None();
        const config = await client.discovery(new URL(this.settings.issuer), this.settings.clientId, undefined, auth, {
          ...(fetcher ? { [client.customFetch]: fetcher } : {}),
          ...(this.settings.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : {}),
        });
        if (fetcher) config[client.customFetch] = fetcher;
        this.configuration = config;
        this.failure = undefined;
        this.logger.info({ issuer: this.settings.issuer }, 'OIDC: provider discovered');
      } catch (error) {
        this.failure = `discovery of ${this.settings.issuer} failed: ${(error as Error).message}${causeOf(error)}`;
        this.logger.error({ issuer: this.settings.issuer, err: error }, 'OIDC: discovery failed; sign-in with OIDC is unavailable until it succeeds');
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  /** With web.oidc.caFile: fetch through an agent that trusts that CA (and nothing else is changed). */
  private fetcher(): client.CustomFetch | undefined {
    if (!this.settings.caFile) return undefined;
    const agent = new Agent({ connect: { ca: readFileSync(this.settings.caFile, 'utf8') } });
    return ((url: string, options: Record<string, unknown>) => undiciFetch(url, { ...options, dispatcher: agent } as Parameters<typeof undiciFetch>[1])) as unknown as client.CustomFetch;
  }
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { message?: string; code?: string } }).cause;
  return cause?.message ? ` (${cause.code ?? cause.message})` : '';
}
