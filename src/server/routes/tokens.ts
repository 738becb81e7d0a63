import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getMember } from '../../access/members-repo.js';
import type { ServerDeps } from '../deps.js';
import { forbidden, notFound } from '../http-errors.js';
import { actorOf } from '../principal.js';
import { route } from '../route.js';
import { apiRoleOf, roleAtLeast, ROLES } from '../roles.js';
import { mintToken, revokeToken } from '../token-service.js';
import { getTokenById, listTokens } from '../tokens-repo.js';

/**
 * API tokens. A token is shown once, in the answer that creates it. Tokens are
 * minted for oneself only — never in another person's name, whatever one's
 * role (an operator mints a member's first token: `tagbox token create`) — and
 * never stronger than the caller's own. Members see and revoke only their own;
 * admins revoke others' only when they outrank-or-equal both the token and its
 * member (so never an owner's).
 */
export function tokenRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'POST',
      url: '/tokens',
      tag: 'tokens',
      summary: 'Create an API token for yourself (shown once); role defaults to, and may not exceed, your own',
      role: 'member',
      status: 201,
      body: z.strictObject({
        name: z.string().min(1).max(100),
        role: z.enum(ROLES).optional(),
      }),
      handler: async ({ body, principal }) => {
        const role = body.role ?? principal.role;
        if (!roleAtLeast(principal.role, role)) throw forbidden(`role: you cannot create a token stronger than your own (${principal.role})`);
        const { token, record } = await mintToken(deps.store, deps.audit, { orgId: principal.orgId, memberId: principal.memberId, role, name: body.name, actor: actorOf(principal) });
        return { ...record, token };
      },
    });
    route(app, {
      method: 'GET',
      url: '/tokens',
      tag: 'tokens',
      summary: 'List API tokens (admins: all; members: their own); never the tokens themselves',
      role: 'member',
      handler: async ({ principal }) => listTokens(deps.store.db, principal.orgId, roleAtLeast(principal.role, 'admin') ? undefined : principal.memberId),
    });
    route(app, {
      method: 'DELETE',
      url: '/tokens/:id',
      tag: 'tokens',
      summary: 'Revoke an API token',
      role: 'member',
      status: 204,
      params: z.strictObject({ id: z.string().min(1).max(100) }),
      handler: async ({ params, principal }) => {
        const token = await getTokenById(deps.store.db, principal.orgId, params.id);
        const mine = token?.memberId === principal.memberId;
        // Someone else's token is "not found" to a member: no probing for ids.
        if (!token || (!mine && !roleAtLeast(principal.role, 'admin'))) throw notFound(`token "${params.id}" not found`);
        if (!mine) {
          const holder = await getMember(deps.store.db, token.memberId);
          const holderRole = apiRoleOf(holder?.roles ?? []);
          if (!roleAtLeast(principal.role, token.role) || !roleAtLeast(principal.role, holderRole)) {
            throw forbidden(`only an ${roleAtLeast(holderRole, token.role) ? holderRole : token.role} can revoke this token`);
          }
        }
        await revokeToken(deps.store, deps.audit, token, actorOf(principal));
      },
    });
  };
}
