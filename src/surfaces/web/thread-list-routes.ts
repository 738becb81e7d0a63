import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mayUseChannel } from '../../access/channel-access.js';
import { getMember } from '../../access/members-repo.js';
import { getChannel } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../../server/deps.js';
import { forbidden, notFound } from '../../server/http-errors.js';
import type { Principal } from '../../server/principal.js';
import { route } from '../../server/route.js';
import { placeKey } from '../../sessions/model.js';
import { listThreads } from './thread-list.js';

const listQuery = z.strictObject({
  limit: z.coerce.number({ error: 'expected a whole number from 1 to 200' }).int('expected a whole number from 1 to 200').min(1, 'expected a whole number from 1 to 200').max(200, 'expected a whole number from 1 to 200').default(50),
  before: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time, such as 2025-01-31T00:00:00Z' }).optional(),
});

/**
 * The chat's left side: a channel's threads, and the caller's DM threads.
 * Visibility is the chat's (chat-routes.ts): a channel of the caller's
 * workspace they may use (a private one only if they are in it), and only
 * their own DM — nobody lists another member's DM threads.
 */
export function threadListRoutes(deps: ServerDeps) {
  const db = deps.store.db;

  async function callerOf(principal: Principal) {
    const member = await getMember(db, principal.memberId);
    if (!member) throw forbidden('your member record is gone');
    return member;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/channels/:id/threads',
      tag: 'chat',
      summary: "A channel's threads, newest activity first (limit up to 200; before=ISO pages back)",
      role: 'member',
      params: z.strictObject({ id: z.string().min(1).max(200) }),
      query: listQuery,
      handler: async ({ params, query, principal }) => {
        const member = await callerOf(principal);
        const channel = await getChannel(db, params.id);
        if (!channel || channel.workspaceId !== member.workspaceId) throw notFound(`channel "${params.id}" not found in your workspace`);
        if (!(await mayUseChannel(db, member, channel))) throw forbidden(`channel "${channel.name}" is private: only its members can use it; ask an admin to add you`);
        const place = placeKey({ kind: 'channel', channelId: channel.id });
        return { threads: await listThreads(db, { workspaceId: member.workspaceId, place, limit: query.limit, ...(query.before ? { before: new Date(query.before).toISOString() } : {}) }) };
      },
    });
    route(app, {
      method: 'GET',
      url: '/dms/threads',
      tag: 'chat',
      summary: 'Your DM threads with the agent, newest activity first (limit up to 200; before=ISO pages back)',
      role: 'member',
      query: listQuery,
      handler: async ({ query, principal }) => {
        const member = await callerOf(principal);
        const place = placeKey({ kind: 'dm', memberId: member.id });
        return { threads: await listThreads(db, { workspaceId: member.workspaceId, place, limit: query.limit, ...(query.before ? { before: new Date(query.before).toISOString() } : {}) }) };
      },
    });
  };
}
