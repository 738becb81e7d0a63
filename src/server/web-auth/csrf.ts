import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http-errors.js';
import { SESSION_COOKIE } from './cookies.js';
import { sameSecret } from '../bearer-secrets.js';
import { ownOrigin, type WebConfig } from './web-config.js';

/**
 * The CSRF token of a session: derived from the cookie value, so nothing extra
 * is stored and only a page that was handed it (by sign-in or /me) knows it —
 * another site can make the browser send the cookie, never read this.
 */
export function csrfTokenFor(cookie: string): string {
  return createHash('sha256').update(`csrf:${cookie}`, 'utf8').digest('base64url');
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export const CSRF_MESSAGE = 'missing or wrong X-CSRF-Token header: reload the page';
const SIGN_IN_PATH = '/api/v1/auth/link';

/**
 * One hook, after authentication, for every route there is or will be: a
 * state-changing request made with a cookie session must carry the session's
 * X-CSRF-Token, and a state-changing request that carries our cookie (or signs
 * in, against login CSRF) must not come from another origin. Bearer requests
 * are left alone: a browser never attaches a bearer token by itself.
 */
export function installCsrf(app: FastifyInstance, web: () => WebConfig): void {
  app.addHook('onRequest', async (request) => {
    if (SAFE_METHODS.has(request.method)) return;
    const bearer = request.headers.authorization !== undefined;
    const withCookie = !bearer && request.cookies[SESSION_COOKIE] !== undefined;
    const signingIn = request.url.split('?')[0] === SIGN_IN_PATH;
    if (withCookie || signingIn) {
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== ownOrigin(web(), request)) {
        throw new HttpError(403, 'csrf', `this request came from another site (Origin ${origin}); it is refused`);
      }
    }
    if (request.principal?.via === 'session' && request.webSession) {
      const sent = request.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !sameSecret(sent, request.webSession.csrfToken)) throw new HttpError(403, 'csrf', CSRF_MESSAGE);
    }
  });
}
