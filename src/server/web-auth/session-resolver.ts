import type { FastifyRequest } from 'fastify';
import type { ControlStore } from '../../store/database.js';
import type { PrincipalResolver } from '../principal.js';
import { currentApiRole } from '../auth.js';
import { SESSION_COOKIE } from './cookies.js';
import { csrfTokenFor } from './csrf.js';
import { findLiveSession, touchSession } from './web-sessions.js';

/** What /me and sign-out need of the cookie session behind request.principal. */
export interface RequestWebSession {
  id: string;
  orgId: string;
  memberId: string;
  expiresAt: string;
  csrfToken: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    webSession: RequestWebSession | undefined;
  }
}

// last_seen_at drives the idle timeout; a minute's precision is plenty and spares a write per request.
const TOUCH_EVERY_MS = 60_000;

/**
 * Cookie -> principal. An Authorization header wins outright (even a bad
 * one: that request is a script's, and must not fall back on a browser's
 * cookie). The role is recomputed from member_roles on every request, as for
 * tokens, so a demotion takes effect at once.
 */
export function sessionResolver(store: ControlStore, idleHours: () => number): PrincipalResolver {
  return async (request: FastifyRequest) => {
    if (request.headers.authorization !== undefined) return undefined;
    const cookie = request.cookies[SESSION_COOKIE];
    if (!cookie) return undefined;
    const session = await findLiveSession(store.db, cookie, idleHours());
    if (!session) return undefined;
    if (Date.parse(session.lastSeenAt) + TOUCH_EVERY_MS < Date.now()) await touchSession(store.db, session.id);
    request.webSession = { id: session.id, orgId: session.orgId, memberId: session.memberId, expiresAt: session.expiresAt, csrfToken: csrfTokenFor(cookie) };
    return { via: 'session', credentialId: session.id, memberId: session.memberId, orgId: session.orgId, role: await currentApiRole(store, session.memberId) };
  };
}
