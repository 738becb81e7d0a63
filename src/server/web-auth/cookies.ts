import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebConfig } from './web-config.js';

export const SESSION_COOKIE = 'tagbox_session';

/** Secure whenever browsers reach us over https (configured, or this very request). */
export function wantsSecure(web: WebConfig, request: FastifyRequest): boolean {
  return web.publicUrl?.startsWith('https:') === true || request.protocol === 'https';
}

/** HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), whole site. */
export function setSessionCookie(reply: FastifyReply, request: FastifyRequest, web: WebConfig, value: string, expiresAt: string): void {
  const maxAge = Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000));
  reply.setCookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'lax', path: '/', maxAge, secure: wantsSecure(web, request) });
}

export function clearSessionCookie(reply: FastifyReply, request: FastifyRequest, web: WebConfig): void {
  reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', path: '/', secure: wantsSecure(web, request) });
}
