import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mayUseChannel } from '../../access/channel-access.js';
import { checkInvocation } from '../../access/invocation.js';
import { getMember } from '../../access/members-repo.js';
import type { Channel } from '../../access/model.js';
import { getOrg } from '../../access/orgs-repo.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import { compileCron, DEFAULT_TIMEZONE, MAX_CRON_LENGTH, nextFireTime } from '../../surfaces/schedules/fire-times.js';
import type { Schedule } from '../../surfaces/schedules/model.js';
import { listRuns } from '../../surfaces/schedules/schedule-runs-repo.js';
import { addSchedule, removeSchedule } from '../../surfaces/schedules/schedule-service.js';
import { getSchedule, listSchedulesByChannel, listSchedulesByOrg } from '../../surfaces/schedules/schedules-repo.js';
import type { ServerDeps } from '../deps.js';
import { badRequest, forbidden, notFound } from '../http-errors.js';
import { actorOf, type Principal } from '../principal.js';
import { route } from '../route.js';
import { roleAtLeast } from '../roles.js';

const idParams = z.strictObject({ id: z.string().min(1).max(100) });
const RECENT_RUNS = 20;
const previewQuery = z.strictObject({
  cron: z.string({ error: 'expected a cron expression such as "0 9 * * 1-5"' }).max(MAX_CRON_LENGTH, `expected at most ${MAX_CRON_LENGTH} characters`),
  timezone: z.string().max(100, 'expected an IANA time zone such as "Europe/Paris"').optional(),
  count: z.coerce.number({ error: 'expected a whole number from 1 to 20' }).int('expected a whole number from 1 to 20').min(1, 'expected a whole number from 1 to 20').max(20, 'expected a whole number from 1 to 20').default(5),
});

/**
 * Schedules (CONTRACT.md "Schedules"): a cron-timed prompt in a channel. Any
 * member may schedule in a channel they may use — each firing is as if they
 * had typed the prompt there, so the rules are the chat's: the channel rule
 * (`mayUseChannel`) and the org's member access (`checkInvocation`). Admins see and delete every schedule of the org; a
 * member sees those of channels they may use (and their own), and deletes
 * only their own. Someone else's schedule they cannot see is "not found".
 */
export function scheduleRoutes(deps: ServerDeps, options: { maxPromptBytes: number }) {
  const db = deps.store.db;
  const createBody = z.strictObject({
    cron: z.string({ error: 'expected a cron expression such as "0 9 * * 1-5"' }).max(MAX_CRON_LENGTH, `expected at most ${MAX_CRON_LENGTH} characters`),
    timezone: z.string({ error: 'expected an IANA time zone such as "Europe/Paris"' }).max(100, 'expected an IANA time zone such as "Europe/Paris"').optional(),
    prompt: z.string({ error: 'expected the text to post in the channel' }),
  });

  /** The channel, if it is in the caller's org. */
  async function channelIn(principal: Principal, id: string): Promise<Channel> {
    const channel = await getChannel(db, id);
    const workspace = channel && (await getWorkspace(db, channel.workspaceId));
    if (!channel || workspace?.orgId !== principal.orgId) throw notFound(`channel "${id}" not found`);
    return channel;
  }

  async function mayUse(principal: Principal, channel: Channel): Promise<boolean> {
    const member = await getMember(db, principal.memberId);
    return member !== undefined && (await mayUseChannel(db, member, channel));
  }

  async function usableChannel(principal: Principal, id: string): Promise<Channel> {
    const channel = await channelIn(principal, id);
    if (!(await mayUse(principal, channel))) {
      throw forbidden(`channel "${id}": you may not use it (${channel.isPrivate ? 'it is private and you are not one of its members' : 'it is in a workspace you are not a member of'})`);
    }
    return channel;
  }

  /** A schedule acts as its creator: who may not invoke the agent (the org's member access) may not schedule it either. */
  async function mayInvoke(principal: Principal): Promise<void> {
    const [org, member] = await Promise.all([getOrg(db, principal.orgId), getMember(db, principal.memberId)]);
    if (!org) throw notFound(`org "${principal.orgId}" not found`);
    const check = checkInvocation({ org, member, place: 'channel' });
    if (!check.allowed) throw forbidden(`you may not invoke the agent, so you may not schedule it: ${check.message}`);
  }

  /** Admins see the org's schedules; others those they made or whose channel they may use (memo: per channel, for one request). */
  async function visible(principal: Principal, schedule: Schedule, memo = new Map<string, Promise<boolean>>()): Promise<boolean> {
    if (schedule.orgId !== principal.orgId) return false;
    if (roleAtLeast(principal.role, 'admin') || schedule.createdBy === principal.memberId) return true;
    let usable = memo.get(schedule.channelId);
    if (!usable) {
      usable = getChannel(db, schedule.channelId).then((channel) => channel !== undefined && mayUse(principal, channel));
      memo.set(schedule.channelId, usable);
    }
    return usable;
  }

  async function visibleSchedule(principal: Principal, id: string): Promise<Schedule> {
    const schedule = await getSchedule(db, id);
    if (!schedule || !(await visible(principal, schedule))) throw notFound(`schedule "${id}" not found`);
    return schedule;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/schedules/preview',
      tag: 'schedules',
      summary: 'The next fire times of a cron expression in a time zone, checked as schedule creation checks it (nothing is saved)',
      role: 'member',
      query: previewQuery,
      handler: async ({ query }) => {
        const compiled = compileCron(query.cron, query.timezone ?? DEFAULT_TIMEZONE, { cron: 'query.cron', timezone: 'query.timezone' });
        const next: string[] = [];
        for (let t = nextFireTime(compiled, new Date()); t && next.length < query.count; t = nextFireTime(compiled, t)) next.push(t.toISOString());
        return { next };
      },
    });
    route(app, {
      method: 'POST',
      url: '/channels/:id/schedules',
      tag: 'schedules',
      summary: 'Schedule a prompt in a channel: each firing starts a new thread, as if you had typed it',
      role: 'member',
      status: 201,
      params: idParams,
      body: createBody,
      handler: async ({ params, body, principal }) => {
        const compiled = compileCron(body.cron, body.timezone ?? DEFAULT_TIMEZONE);
        checkPrompt(body.prompt, options.maxPromptBytes);
        const channel = await usableChannel(principal, params.id);
        await mayInvoke(principal);
        const schedule = await addSchedule(deps.store, deps.audit, actorOf(principal), {
          orgId: principal.orgId,
          channelId: channel.id,
          createdBy: principal.memberId,
          cron: compiled.cron,
          timezone: compiled.timezone,
          prompt: body.prompt,
        });
        return view(schedule);
      },
    });
    route(app, {
      method: 'GET',
      url: '/channels/:id/schedules',
      tag: 'schedules',
      summary: "List a channel's schedules",
      role: 'member',
      params: idParams,
      handler: async ({ params, principal }) => {
        const channel = roleAtLeast(principal.role, 'admin') ? await channelIn(principal, params.id) : await usableChannel(principal, params.id);
        return (await listSchedulesByChannel(db, channel.id)).map(view);
      },
    });
    route(app, {
      method: 'GET',
      url: '/schedules',
      tag: 'schedules',
      summary: 'List the schedules you can see (admins: all of the org)',
      role: 'member',
      handler: async ({ principal }) => {
        const all = await listSchedulesByOrg(db, principal.orgId);
        const memo = new Map<string, Promise<boolean>>();
        const seen: Schedule[] = [];
        for (const schedule of all) if (await visible(principal, schedule, memo)) seen.push(schedule);
        return seen.map(view);
      },
    });
    route(app, {
      method: 'GET',
      url: '/schedules/:id',
      tag: 'schedules',
      summary: 'A schedule and its recent runs (newest first)',
      role: 'member',
      params: idParams,
      handler: async ({ params, principal }) => {
        const schedule = await visibleSchedule(principal, params.id);
        const runs = await listRuns(db, schedule.id, RECENT_RUNS);
        return {
          ...view(schedule),
          runs: runs.map((r) => ({ fireTime: r.fireTime, status: r.status, thread: r.thread ?? null, detail: r.detail ?? null })),
        };
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/schedules/:id',
      tag: 'schedules',
      summary: 'Delete a schedule (its creator, or an admin)',
      role: 'member',
      status: 204,
      params: idParams,
      handler: async ({ params, principal }) => {
        const schedule = await visibleSchedule(principal, params.id);
        if (schedule.createdBy !== principal.memberId && !roleAtLeast(principal.role, 'admin')) {
          throw forbidden(`schedule "${schedule.id}": only its creator or an admin may delete it`);
        }
        if (!(await removeSchedule(deps.store, deps.audit, actorOf(principal), schedule))) throw notFound(`schedule "${params.id}" not found`);
      },
    });
  };
}

function checkPrompt(prompt: string, maxBytes: number): void {
  if (prompt.trim().length === 0) throw badRequest('prompt: expected the text to post in the channel, got an empty one');
  const bytes = Buffer.byteLength(prompt, 'utf8');
  if (bytes > maxBytes) throw badRequest(`prompt: expected at most ${maxBytes} bytes of UTF-8 (agent.maxMessageBytes), got ${bytes}`);
}

/** A schedule as the API shows it; `nextRun` is the next fire time from now (null if it never comes again). */
function view(schedule: Schedule) {
  let nextRun: string | null = null;
  try {
    nextRun = nextFireTime(compileCron(schedule.cron, schedule.timezone), new Date())?.toISOString() ?? null;
  } catch {
    // Validated on creation; a stored expression that no longer parses shows no next run.
  }
  return {
    id: schedule.id,
    channel: schedule.channelId,
    cron: schedule.cron,
    timezone: schedule.timezone,
    prompt: schedule.prompt,
    createdBy: schedule.createdBy,
    createdAt: schedule.createdAt,
    nextRun,
  };
}
