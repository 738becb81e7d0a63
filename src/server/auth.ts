import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ControlStore } from '../store/database.js';
import type { PrincipalResolver } from './principal.js';
import { apiRoleOf, roleAtLeast, type Role } from './roles.js';
import { findToken, touchToken } from './tokens-repo.js';

/**
 * Resolves `request.principal` before any route runs. Resolvers are tried in
 * order; API tokens are the first, browser sessions will be another. A route
 * decides what a missing principal means (see route.ts).
 */
export function installAuth(app: FastifyInstance, resolvers: PrincipalResolver[]): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    for (const resolve of resolvers) {
      const principal = await resolve(request);
      if (principal) {
        request.principal = principal;
        return;
      }
    }
  });
}

// last_used_at is a hint for admins, not a log: write it at most once a minute per token.
const TOUCH_EVERY_MS = 60_000;

export function tokenResolver(store: ControlStore): PrincipalResolver {
  const touched = new Map<string, number>();
  return async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (!header) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return undefined;
    const record = await findToken(store.db, match[1]!);
    if (!record) return undefined;
    const now = Date.now();
    if ((touched.get(record.id) ?? 0) + TOUCH_EVERY_MS < now) {
      touched.set(record.id, now);
      await touchToken(store.db, record.id);
    }
    // A token never outranks its member: demoting someone takes effect on their existing tokens at once.
    const memberRole = await currentApiRole(store, record.memberId);
    const role = roleAtLeast(memberRole, record.role) ? record.role : memberRole;
    return { via: 'token', credentialId: record.id, memberId: record.memberId, orgId: record.orgId, role };
  };
}

/** The member's API role as the store has it now: read on every request, so a demotion applies at once. */
export async function currentApiRole(store: ControlStore, memberId: string): Promise<Role> {
  const roles = await store.db.selectFrom('member_roles').select('role').where('member_id', '=', memberId).execute();
  return apiRoleOf(roles.map((r) => r.role));
}
