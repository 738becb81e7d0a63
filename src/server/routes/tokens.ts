import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getMember } from '../../access/members-repo.js';
import { getWorkspace } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../deps.js';
import { forbidden, notFound } from '../http-errors.js';
import { route } from '../route.js';
import { roleAtLeast, ROLES } from '../roles.js';
import { createToken, deleteToken, getTokenById, listTokens } from '../tokens-repo.js';

/**
 * API tokens. A token is shown once, in the answer that creates it. Nobody
 * mints a token stronger than their own; members see and revoke only their own;
 * admins cannot touch owners' tokens.
 */
export function tokenRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'POST',
      url: '/tokens',
      tag: 'tokens',
      summary: 'Create an API token (shown once); defaults: for yourself, with your role',
      role: 'member',
      status: 201,
      body: z.strictObject({
        name: z.string().min(1).max(100),
        memberId: z.string().min(1).optional(),
        role: z.enum(ROLES).optional(),
      }),
      handler: async ({ body, principal }) => {
        const memberId = body.memberId ?? principal.memberId;
        const role = body.role ?? principal.role;
        if (!roleAtLeast(principal.role, role)) throw forbidden(`role: you cannot create a token stronger than your own (${principal.role})`);
        if (memberId !== principal.memberId) {
          if (!roleAtLeast(principal.role, 'admin')) throw forbidden('memberId: you can create tokens for yourself only');
          const member = await getMember(deps.store.db, memberId);
          const workspace = member && (await getWorkspace(deps.store.db, member.workspaceId));
          if (!workspace || workspace.orgId !== principal.orgId) throw notFound(`memberId: member "${memberId}" not found`);
        }
        const { token, record } = await createToken(deps.store.db, { orgId: principal.orgId, memberId, role, name: body.name, createdBy: principal.memberId });
        await deps.audit.append({ type: 'admin-change', actor: principal.memberId, outcome: 'ok', action: 'token.create', target: `token:${record.id}`, member: memberId, role, name: body.name });
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
        if (!mine && !roleAtLeast(principal.role, token.role)) throw forbidden(`only an ${token.role} can revoke this token`);
        await deleteToken(deps.store.db, token.id);
        await deps.audit.append({ type: 'admin-change', actor: principal.memberId, outcome: 'ok', action: 'token.revoke', target: `token:${token.id}`, member: token.memberId });
      },
    });
  };
}
