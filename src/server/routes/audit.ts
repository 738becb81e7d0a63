import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AUDIT_EVENT_TYPES } from '../../audit/events.js';
import type { VerifyResult } from '../../audit/log.js';
import { verifyReport } from '../../audit/verify-report.js';
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
        /** What was decided: credential | allowlist | blocked for egress; ok, denied, ... for the others. */
        outcome: z.string().min(1).max(100).optional(),
        /** The host of egress and credential-use events (case-insensitive). */
        host: z.string().min(1).max(300).optional(),
        /** Who asked: what the member did, and the events of the threads they started (the agent's requests for them). */
        member: z.string().min(1).max(200).optional(),
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
    route(app, {
      method: 'POST',
      url: '/audit/verify',
      tag: 'audit',
      summary: 'Check the hash chain, every column and the signed checkpoints (as `tagbox audit verify`); names the first problem',
      role: 'admin',
      handler: async () => verifyAnswer(await deps.audit.verify()),
    });
  };
}

/**
 * The CLI's verification and its words: the server's store trusts the key (and
 * reads the external checkpoint file) of its checkpointer, as `tagbox audit
 * verify` without flags does from the same home.
 */
function verifyAnswer(result: VerifyResult) {
  const report = verifyReport(result);
  if (result.ok) return { ...result, summary: report.lines };
  const { broken, ...summary } = result;
  return { ...summary, ok: false as const, brokenAt: broken, message: report.failure! };
}
