import type { FastifyRequest } from 'fastify';
import { WEB_DEFAULTS, type TagboxConfig } from '../../config/schema.js';

export type WebConfig = TagboxConfig['web'];
export const DEFAULT_WEB_CONFIG: WebConfig = { ...WEB_DEFAULTS };

/**
 * The server's own origin: `web.publicUrl` when configured, else what the
 * request says (scheme of the connection, Host header). The fallback is only
 * as trustworthy as the Host header: fine when browsers reach the server
 * directly, but behind a proxy that forwards arbitrary Host values a link
 * minted from a forged Host would point elsewhere — set web.publicUrl there.
 */
export function ownOrigin(web: WebConfig, request: FastifyRequest): string {
  if (web.publicUrl) return web.publicUrl;
  return `${request.protocol}://${request.host}`;
}

export function signInUrl(base: string, token: string): string {
  return `${base}/signin#token=${token}`;
}
