import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { z } from 'zod';
import type { ServerDeps } from '../deps.js';
import { badRequest, unavailable } from '../http-errors.js';
import { route } from '../route.js';
import { setSessionCookie, wantsSecure } from './cookies.js';
import { openSession } from './link-service.js';
import type { OidcProvider } from './oidc-client.js';
import { mapIdentity } from './oidc-identity.js';
import { OIDC_COOKIE, OIDC_LOGIN_MINUTES, savePendingLogin, takePendingLogin } from './oidc-logins.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import { ownOrigin, type WebConfig } from './web-config.js';

export const OIDC_START_PATH = '/auth/oidc/start';
const CALLBACK_PATH = '/auth/oidc/callback';
const COOKIE_PATH = '/auth/oidc';

/**
 * `next` may only be a path of this site: one leading slash, never `//` or
 * `/\` (a browser reads both as another host), no control characters — else
 * the sign-in would be an open redirect.
 */
export function isLocalPath(next: string): boolean {
  if (!/^\/(?![/\\])/.test(next) || next.includes('\\') || [...next].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return false;
  try {
    return new URL(next, 'http://tagbox.invalid').origin === 'http://tagbox.invalid';
  } catch {
    return false;
  }
}

/**
 * OIDC sign-in (authorization code + PKCE S256, state, nonce), outside
 * /api/v1 because browsers navigate here. A refusal goes back to the sign-in
 * page with the reason in the fragment (`/signin#error=...`), never in a query
 * string the server or a proxy would log.
 */
export function oidcRoutes(deps: ServerDeps, options: { web: () => WebConfig; provider: OidcProvider }) {
  const settings = options.provider.settings;
  const redirectUri = (request: FastifyRequest) => `${ownOrigin(options.web(), request)}${CALLBACK_PATH}`;
  const refuse = (reply: FastifyReply, reason: string) => reply.redirect(`/signin#error=${encodeURIComponent(reason)}`, 302);

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: OIDC_START_PATH,
      tag: 'auth',
      summary: `Start signing in with OIDC: 302 to the provider (next: a path of this site to return to, default /)`,
      role: 'public',
      query: z.strictObject({ next: z.string().max(2000).optional() }),
      handler: async ({ query, request, reply }) => {
        const next = query.next ?? '/';
        if (!isLocalPath(next)) throw badRequest('query.next: expected a path on this site, such as /channels (not a URL or //host)');
        const discovered = await options.provider.get();
        if ('error' in discovered) throw unavailable(`sign-in with ${settings.name} is unavailable: ${discovered.error}`, 'oidc_unavailable');
        const codeVerifier = client.randomPKCECodeVerifier();
        const pending = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier, next };
        const { cookie } = await withWriteTransaction(deps.store, undefined, (db) => savePendingLogin(db, pending));
        reply.setCookie(OIDC_COOKIE, cookie, { httpOnly: true, sameSite: 'lax', path: COOKIE_PATH, maxAge: OIDC_LOGIN_MINUTES * 60, secure: wantsSecure(options.web(), request) });
        const url = client.buildAuthorizationUrl(discovered.config, {
          redirect_uri: redirectUri(request),
          scope: settings.scopes.join(' '),
          code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          state: pending.state,
          nonce: pending.nonce,
        });
        return reply.redirect(url.href, 302);
      },
    });
    route(app, {
      method: 'GET',
      url: CALLBACK_PATH,
      tag: 'auth',
      summary: 'Where the OIDC provider sends the browser back: checks state, nonce and PKCE, signs in, 302 to next',
      role: 'public',
      // The query holds a one-time authorization code: no request log lines for it.
      logLevel: 'warn',
      query: z.looseObject({}),
      handler: async ({ request, reply }) => {
        const web = options.web();
        const cookie = request.cookies[OIDC_COOKIE];
        reply.clearCookie(OIDC_COOKIE, { httpOnly: true, sameSite: 'lax', path: COOKIE_PATH, secure: wantsSecure(web, request) });
        const pending = cookie ? await withWriteTransaction(deps.store, undefined, (db) => takePendingLogin(db, cookie)) : undefined;
        if (!pending) return refuse(reply, `this sign-in with ${settings.name} was already used, expired, or started in another browser; start again`);
        const discovered = await options.provider.get();
        if ('error' in discovered) return refuse(reply, `sign-in with ${settings.name} is unavailable: ${discovered.error}`);
        let claims: client.IDToken | undefined;
        try {
          const search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
          const currentUrl = new URL(redirectUri(request) + search);
          const tokens = await client.authorizationCodeGrant(discovered.config, currentUrl, {
            pkceCodeVerifier: pending.codeVerifier,
            expectedState: pending.state,
            expectedNonce: pending.nonce,
            idTokenExpected: true,
          });
          claims = tokens.claims();
        } catch (error) {
          const why = describe(error);
          request.log.warn({ reason: why }, 'OIDC: callback refused');
          return refuse(reply, `sign-in with ${settings.name} failed: ${why}`);
        }
        if (!claims) return refuse(reply, `sign-in with ${settings.name} failed: no ID token`);
        const mapped = await mapIdentity(
          deps.store,
          deps.audit,
          deps.access,
          {
            iss: claims.iss,
            sub: claims.sub,
            ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
            emailVerified: claims.email_verified === true,
            ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
          },
          settings.allowedEmailDomains,
        );
        if ('refused' in mapped) {
          await deps.audit.append({ type: 'signin', actor: `oidc:${claims.iss}`, outcome: 'refused', action: 'signin', method: 'oidc', issuer: claims.iss, subject: claims.sub, reason: mapped.refused });
          return refuse(reply, mapped.refused);
        }
        const { cookie: session, session: row } = await openSession(deps.store, deps.audit, {
          orgId: mapped.orgId,
          memberId: mapped.memberId,
          method: 'oidc',
          hours: web.sessionHours,
          detail: { issuer: claims.iss, subject: claims.sub, mapped: mapped.how },
        });
        setSessionCookie(reply, request, web, session, row.expiresAt);
        return reply.redirect(pending.next, 302);
      },
    });
  };
}

/** openid-client's message and the check that failed beneath it (`unexpected "state" response parameter value`). */
function describe(error: unknown): string {
  const message = (error as Error).message;
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message !== message ? `${message}: ${cause.message}` : message;
}
