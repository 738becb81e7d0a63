import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { channelAccess } from '../../access/effective-access.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../deps.js';
import { notFound } from '../http-errors.js';
import { route } from '../route.js';

/** A channel's effective access (invariant 5), as the proxy computes it, with where each part comes from: admins. */
export function accessRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/channels/:id/access',
      tag: 'bundles',
      summary: "A channel's effective access: the bundles of the org, its workspace and the channel (each with where it is attached), the model connection and the plugins",
      role: 'admin',
      params: z.strictObject({ id: z.string().min(1).max(200) }),
      handler: async ({ params, principal }) => {
        const channel = await getChannel(deps.store.db, params.id);
        const workspace = channel && (await getWorkspace(deps.store.db, channel.workspaceId));
        if (!channel || workspace?.orgId !== principal.orgId) throw notFound(`channel "${params.id}" not found`);
        return channelAccess(deps.store.db, channel.id, deps.modelSecret ? { modelSecret: deps.modelSecret } : {});
      },
    });
  };
}
