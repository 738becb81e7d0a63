import type { FastifyInstance } from 'fastify';
import { listMembers } from '../../access/members-repo.js';
import type { ServerDeps } from '../deps.js';
import { route } from '../route.js';

/** Every member of the org, across its workspaces (the console's members page): admins. */
export function memberRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/members',
      tag: 'workspaces',
      summary: 'Every member of the org across its workspaces, with roles and workspace',
      role: 'admin',
      handler: async ({ principal }) => {
        const members = [];
        // Per workspace (an org has a handful): two queries each, whatever the number of members.
        for (const w of await deps.access.listWorkspaces(principal.orgId)) {
          for (const m of await listMembers(deps.store.db, w.id)) members.push({ ...m, workspace: { id: w.id, name: w.name, kind: w.kind } });
        }
        return { members };
      },
    });
  };
}
