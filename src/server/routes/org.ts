import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../http-errors.js';
import { actorOf } from '../principal.js';
import { route } from '../route.js';

const orgSettings = z
  .strictObject({
    memberAccess: z.enum(['anyone', 'members', 'roles']),
    memberAccessRoles: z.array(z.string().min(1).max(64)).max(50),
    dmsAllowed: z.boolean(),
    retentionDays: z.number().int().min(1).max(36500),
    zeroDataRetention: z.boolean(),
    /** Appended to the agent's system prompt (the claude engine); a channel's own follow. */
    instructions: z.string().max(16 * 1024),
  })
  .partial();

/** The org and its settings: readable by admins, changed by the owner only. */
export function orgRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/org',
      tag: 'org',
      summary: 'The org and its settings',
      role: 'admin',
      handler: ({ principal }) => deps.access.getOrg(principal.orgId),
    });
    route(app, {
      method: 'PATCH',
      url: '/org',
      tag: 'org',
      summary: 'Change org settings (member access, DMs, retention, zero data retention, instructions)',
      role: 'owner',
      body: orgSettings,
      handler: async ({ body, principal }) => {
        if (Object.keys(body).length === 0) throw badRequest('body: expected at least one setting to change');
        return deps.access.updateOrgSettings(actorOf(principal), principal.orgId, body);
      },
    });
  };
}
