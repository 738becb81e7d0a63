import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AUDIT_EVENT_TYPES } from '../../audit/events.js';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../http-errors.js';
import { route } from '../route.js';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');

/** The audit log, filtered (oldest first). Admins: it names people and places. */
export function auditRoutes(deps: ServerDeps) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/audit',
      tag: 'audit',
      summary: 'Query audit events by type, actor, channel, session and time range',
      role: 'admin',
      query: z.strictObject({
        type: z.enum(AUDIT_EVENT_TYPES).optional(),
        actor: z.string().min(1).optional(),
        channel: z.string().min(1).optional(),
        session: z.string().min(1).optional(),
        /** A thread is its session: the chain from who asked to every request the agent made for it. */
        thread: z.string().min(1).optional(),
        since: isoTime.optional(),
        until: isoTime.optional(),
        limit: z.coerce.number().int().min(1).max(10_000).default(1000),
      }),
      handler: async ({ query }) => {
        const events = [];
        const { since, until, thread, ...rest } = query;
        if (thread !== undefined && rest.session !== undefined && thread !== rest.session) throw badRequest('query.thread and query.session name the same thing; give one');
        const filter = { ...rest, ...(thread ? { session: thread } : {}), ...(since ? { since: new Date(since).toISOString() } : {}), ...(until ? { until: new Date(until).toISOString() } : {}) };
        for await (const event of deps.audit.query(filter)) events.push(event);
        return { events };
      },
    });
  };
}
