import { turnOutputs } from '../../sessions/turn-outputs-repo.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { addChannelMember, listChannelMembers, mayUseChannel, removeChannelMember } from '../../access/channel-access.js';
import { getMember } from '../../access/members-repo.js';
import type { Channel, Member } from '../../access/model.js';
import { getChannel, getWorkspace, listChannels } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../../server/deps.js';
import { badRequest, forbidden, notFound } from '../../server/http-errors.js';
import { auditActor, type Principal } from '../../server/principal.js';
import { route } from '../../server/route.js';
import type { EventHub } from '../../sessions/event-hub.js';
import type { Invocation, InvokeResult } from '../../sessions/invocation.js';
import { listMessages } from '../../sessions/messages-repo.js';
import type { Session } from '../../sessions/model.js';
import type { SessionService } from '../../sessions/session-service.js';
import { openTurnsOf } from '../../sessions/turns-repo.js';
import { resumeCursor, streamEvents } from './sse.js';
import { threadListRoutes } from './thread-list-routes.js';

export interface ChatDeps {
  service: SessionService;
  hub: EventHub;
  /** Engines a channel may be set to. */
  engines: string[];
}

const id = z.string().min(1).max(200);
const postBody = z.strictObject({
  text: z.string().max(1024 * 1024),
  thread: id.optional(),
});
const idempotencyKey = /^[\x21-\x7e]{1,200}$/;

/**
 * The chat API (CONTRACT.md "Talking to the agent"): the web workspace's
 * surface. The caller is the author; what they may see and post is their
 * workspace's channels (a private one only if they are in it) and their own
 * DM. Everything else is the session layer's, through one Invocation.
 */
export function chatRoutes(deps: ServerDeps, chat: ChatDeps) {
  const db = deps.store.db;

  async function callerOf(principal: Principal): Promise<Member> {
    const member = await getMember(db, principal.memberId);
    if (!member) throw forbidden('your member record is gone');
    return member;
  }

  /** A channel the caller may use; 404 outside their workspace, 403 for a private one they are not in. */
  async function usableChannel(principal: Principal, channelId: string): Promise<{ channel: Channel; member: Member }> {
    const member = await callerOf(principal);
    const channel = await getChannel(db, channelId);
    if (!channel || channel.workspaceId !== member.workspaceId) throw notFound(`channel "${channelId}" not found in your workspace`);
    if (!(await mayUseChannel(db, member, channel))) throw forbidden(`channel "${channel.name}" is private: only its members can use it; ask an admin to add you`);
    return { channel, member };
  }

  /** A thread the caller may read: one of a channel they may use, or their own DM. Others do not exist for them. */
  async function readableThread(principal: Principal, threadId: string): Promise<{ session: Session; member: Member; channel?: Channel }> {
    const member = await callerOf(principal);
    const session = await chat.service.session(threadId);
    const missing = notFound(`thread "${threadId}" not found`);
    if (!session || session.orgId !== principal.orgId || session.workspaceId !== member.workspaceId) throw missing;
    if (session.place.kind === 'dm') {
      if (session.place.memberId !== member.id) throw missing;
      return { session, member };
    }
    const channel = await getChannel(db, session.place.channelId);
    if (!channel || !(await mayUseChannel(db, member, channel))) throw missing;
    return { session, member, channel };
  }

  function dedupeKey(member: Member, header: string | string[] | undefined): string | undefined {
    const value = Array.isArray(header) ? header[0] : header;
    if (value === undefined) return undefined;
    if (!idempotencyKey.test(value)) throw badRequest('Idempotency-Key: expected 1-200 visible ASCII characters');
    return `web:${member.id}:${value}`;
  }

  /** The caller's message as an Invocation, and the session layer's answer as HTTP. */
  async function post(reply: FastifyReply, member: Member, place: Invocation['place'], body: z.infer<typeof postBody>, idempotency: string | string[] | undefined) {
    const key = dedupeKey(member, idempotency);
    const result = await chat.service.invoke({
      workspaceId: member.workspaceId,
      place,
      ...(body.thread ? { threadKey: body.thread, mustExist: true } : {}),
      memberId: member.id,
      text: body.text,
      trigger: 'message',
      ...(key ? { dedupeKey: key } : {}),
    });
    return answer(reply, result);
  }

  function answer(reply: FastifyReply, result: InvokeResult) {
    if (result.status === 'refused') {
      return reply.status(403).send({ error: { code: 'refused', reason: result.reason, message: result.message }, ...(result.thread ? { thread: result.thread } : {}) });
    }
    return reply.status(result.duplicate ? 200 : 202).send({ thread: result.thread, message: result.message, ...(result.duplicate ? { duplicate: true } : {}) });
  }

  return async (app: FastifyInstance) => {
    // An event stream never ends by itself: a stopping server ends them first,
    // or closing would wait for every connected client forever.
    const closing = new AbortController();
    app.addHook('preClose', async () => closing.abort());
    await app.register(threadListRoutes(deps));
    route(app, {
      method: 'GET',
      url: '/channels',
      tag: 'chat',
      summary: 'Channels you may talk to the agent in',
      role: 'member',
      handler: async ({ principal }) => {
        const member = await callerOf(principal);
        const all = await listChannels(db, member.workspaceId);
        const usable = [];
        for (const c of all) if (await mayUseChannel(db, member, c)) usable.push(c);
        return usable;
      },
    });
    route(app, {
      method: 'POST',
      url: '/channels/:channelId/messages',
      tag: 'chat',
      summary: 'Post a message to the agent in a channel (a new thread without `thread`)',
      role: 'member',
      params: z.strictObject({ channelId: id }),
      body: postBody,
      handler: async ({ params, body, principal, request, reply }) => {
        const { channel, member } = await usableChannel(principal, params.channelId);
        return post(reply, member, { kind: 'channel', channelId: channel.id }, body, request.headers['idempotency-key']);
      },
    });
    route(app, {
      method: 'POST',
      url: '/dms/messages',
      tag: 'chat',
      summary: 'Post a message in your DM with the agent, which acts as you',
      role: 'member',
      body: postBody,
      handler: async ({ body, principal, request, reply }) => {
        const member = await callerOf(principal);
        return post(reply, member, { kind: 'dm', memberId: member.id }, body, request.headers['idempotency-key']);
      },
    });
    route(app, {
      method: 'GET',
      url: '/threads/:thread',
      tag: 'chat',
      summary: 'A thread: its place, its session, its messages and what its turns left (pushed branches, pull requests)',
      role: 'member',
      params: z.strictObject({ thread: id }),
      handler: async ({ params, principal }) => {
        const { session, channel } = await readableThread(principal, params.thread);
        const open = await openTurnsOf(db, session.id);
        const state = open.some((t) => t.status === 'running') ? 'running' : open.length ? 'queued' : 'idle';
        return {
          thread: session.id,
          place: session.place.kind === 'channel' ? { kind: 'channel', channel: session.place.channelId, name: channel?.name } : { kind: 'dm', member: session.place.memberId },
          session: { state, identity: session.identity, engine: session.engine, sandbox: session.sandboxHolder ? 'live' : 'released' },
          messages: await listMessages(db, session.id),
          outputs: await turnOutputs(db, session.id),
        };
      },
    });
    route(app, {
      method: 'GET',
      url: '/threads/:thread/events',
      tag: 'chat',
      summary: "The thread's events as Server-Sent Events (Last-Event-ID resumes)",
      role: 'member',
      params: z.strictObject({ thread: id }),
      query: z.strictObject({ after: z.coerce.number().int().min(0).optional() }),
      handler: async ({ params, query, principal, request, reply }) => {
        const { session } = await readableThread(principal, params.thread);
        await streamEvents(request, reply, { db, hub: chat.hub, sessionId: session.id, after: resumeCursor(request, query), closing: closing.signal });
        return reply;
      },
    });
    route(app, {
      method: 'POST',
      url: '/threads/:thread/cancel',
      tag: 'chat',
      summary: 'Stop the running turn of a thread',
      role: 'member',
      params: z.strictObject({ thread: id }),
      handler: async ({ params, principal }) => {
        const { session, member } = await readableThread(principal, params.thread);
        return chat.service.cancel(session.id, { id: member.id, name: member.displayName });
      },
    });
    route(app, {
      method: 'PATCH',
      url: '/channels/:id',
      tag: 'chat',
      summary: "Change a channel's agent settings (engine, instructions)",
      role: 'admin',
      params: z.strictObject({ id }),
      body: z.strictObject({ engine: z.string().min(1).max(50).nullable().optional(), instructions: z.string().max(16 * 1024).nullable().optional() }),
      handler: async ({ params, body, principal }) => {
        const channel = await adminChannel(principal, params.id);
        if (body.engine && !chat.engines.includes(body.engine)) throw badRequest(`body.engine: expected one of ${chat.engines.join(', ')}, got "${body.engine}"`);
        const changes: { engine?: string | null; instructions?: string | null } = {};
        if (body.engine !== undefined) changes.engine = body.engine;
        if (body.instructions !== undefined) changes.instructions = body.instructions;
        if (Object.keys(changes).length) await db.updateTable('channels').set(changes).where('id', '=', channel.id).execute();
        await deps.audit.append({ type: 'admin-change', outcome: 'ok', action: 'channel.update', target: `channel:${channel.id}`, fields: Object.keys(changes), ...auditActor(principal) });
        return (await getChannel(db, channel.id))!;
      },
    });
    route(app, {
      method: 'GET',
      url: '/channels/:id/members',
      tag: 'chat',
      summary: "A private channel's members (who may use it)",
      role: 'admin',
      params: z.strictObject({ id }),
      handler: async ({ params, principal }) => ({ members: await listChannelMembers(db, (await adminChannel(principal, params.id)).id) }),
    });
    route(app, {
      method: 'POST',
      url: '/channels/:id/members',
      tag: 'chat',
      summary: 'Add a member to a channel',
      role: 'admin',
      status: 201,
      params: z.strictObject({ id }),
      body: z.strictObject({ memberId: id }),
      handler: async ({ params, body, principal }) => {
        const channel = await adminChannel(principal, params.id);
        const member = await getMember(db, body.memberId);
        if (!member || member.workspaceId !== channel.workspaceId) throw notFound(`memberId: member "${body.memberId}" not found in the channel's workspace`);
        await addChannelMember(db, channel.id, member.id);
        await deps.audit.append({ type: 'admin-change', outcome: 'ok', action: 'channel.member.add', target: `channel:${channel.id}`, member: member.id, ...auditActor(principal) });
        return { channel: channel.id, member: member.id };
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/channels/:id/members/:memberId',
      tag: 'chat',
      summary: 'Remove a member from a channel',
      role: 'admin',
      status: 204,
      params: z.strictObject({ id, memberId: id }),
      handler: async ({ params, principal }) => {
        const channel = await adminChannel(principal, params.id);
        if (!(await removeChannelMember(db, channel.id, params.memberId))) throw notFound(`member "${params.memberId}" is not in channel "${channel.name}"`);
        await deps.audit.append({ type: 'admin-change', outcome: 'ok', action: 'channel.member.remove', target: `channel:${channel.id}`, member: params.memberId, ...auditActor(principal) });
      },
    });
  };

  async function adminChannel(principal: Principal, channelId: string): Promise<Channel> {
    const channel = await getChannel(db, channelId);
    const workspace = channel && (await getWorkspace(db, channel.workspaceId));
    if (!channel || !workspace || workspace.orgId !== principal.orgId) throw notFound(`channel "${channelId}" not found`);
    return channel;
  }
}
