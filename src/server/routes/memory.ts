import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getMember } from '../../access/members-repo.js';
import type { Channel, Member } from '../../access/model.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import { memoryScope } from '../../sessions/channel-memory.js';
import { clearMemory, latestMemory, memoryHistory, memoryVersion, type MemoryVersion } from '../../sessions/memory-repo.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import type { ServerDeps } from '../deps.js';
import { forbidden, notFound } from '../http-errors.js';
import { auditActor, type Principal } from '../principal.js';
import { route } from '../route.js';
import { roleAtLeast } from '../roles.js';

const id = z.string().min(1).max(200);
const version = z.coerce
  .number({ error: 'expected a version number (1 or more)' })
  .int('expected a version number (1 or more)')
  .min(1, 'expected a version number (1 or more)')
  .max(2 ** 31 - 1, 'expected a version number (1 or more)');

/**
 * Channel memory through the API (SESSIONS.md "Channel memory"): what the
 * agent keeps in ~/.tagbox/memory.md for a channel, or for a member in their
 * DM. A channel's memory is the admins' to read and clear (its members see
 * what the agent does with it in their threads); a DM's is its member's and
 * the admins'. Clearing deletes every version and is audited; so is an admin
 * reading someone else's DM memory, which that member's threads never show them.
 */
export function memoryRoutes(deps: ServerDeps) {
  const db = deps.store.db;

  async function channelIn(principal: Principal, channelId: string): Promise<Channel> {
    const channel = await getChannel(db, channelId);
    const workspace = channel && (await getWorkspace(db, channel.workspaceId));
    if (!channel || workspace?.orgId !== principal.orgId) throw notFound(`channel "${channelId}" not found`);
    return channel;
  }

  /** The member whose DM memory it is: the caller themself, or anyone of the org for an admin. */
  async function dmMember(principal: Principal, memberId: string, verb: 'read' | 'clear'): Promise<Member> {
    const member = await getMember(db, memberId);
    const workspace = member && (await getWorkspace(db, member.workspaceId));
    if (!member || workspace?.orgId !== principal.orgId) throw notFound(`member "${memberId}" not found`);
    if (member.id !== principal.memberId && !roleAtLeast(principal.role, 'admin')) {
      throw forbidden(`member "${memberId}": a DM's memory is its member's; only they or an admin may ${verb} it`);
    }
    return member;
  }

  async function current(scope: string) {
    const [latest, history] = await Promise.all([latestMemory(db, scope), memoryHistory(db, scope)]);
    return {
      scope,
      version: latest?.version ?? null,
      content: latest?.content ?? '',
      bytes: latest?.bytes ?? 0,
      updatedAt: latest?.createdAt ?? null,
      history: history.map((h) => ({ version: h.version, bytes: h.bytes, createdAt: h.createdAt, session: h.sessionId, turn: h.turnId ?? null, baseVersion: h.baseVersion ?? null })),
    };
  }

  async function oneVersion(scope: string, v: number) {
    const found = await memoryVersion(db, scope, v);
    if (!found) throw notFound(`params.version: ${scope} has no memory version ${v}`);
    return versionView(found);
  }

  async function clear(principal: Principal, scope: string, where: Record<string, string>) {
    const cleared = await withWriteTransaction(deps.store, undefined, async (trx) => {
      const count = await clearMemory(trx, scope);
      await deps.audit.appendIn(trx, [{ type: 'memory', action: 'clear', outcome: 'ok', org: principal.orgId, scope, count, ...where, ...auditActor(principal) }]);
      return count;
    });
    return { scope, cleared };
  }

  /** An admin looking at someone else's DM memory leaves a record. */
  async function noteRead(principal: Principal, member: Member, scope: string) {
    if (member.id === principal.memberId) return;
    await deps.audit.append({ type: 'memory', action: 'read', outcome: 'ok', org: principal.orgId, scope, member: member.id, ...auditActor(principal) });
  }

  /** The scope of a DM's memory the caller may read (the member, or an admin: recorded). */
  async function readableDmScope(principal: Principal, memberId: string): Promise<string> {
    const member = await dmMember(principal, memberId, 'read');
    const scope = memoryScope({ kind: 'dm', memberId: member.id });
    await noteRead(principal, member, scope);
    return scope;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/channels/:id/memory',
      tag: 'memory',
      summary: "A channel's memory (the agent's ~/.tagbox/memory.md) and its versions, newest first",
      role: 'admin',
      params: z.strictObject({ id }),
      handler: async ({ params, principal }) => current(memoryScope({ kind: 'channel', channelId: (await channelIn(principal, params.id)).id })),
    });
    route(app, {
      method: 'GET',
      url: '/channels/:id/memory/versions/:version',
      tag: 'memory',
      summary: "One version of a channel's memory",
      role: 'admin',
      params: z.strictObject({ id, version }),
      handler: async ({ params, principal }) => oneVersion(memoryScope({ kind: 'channel', channelId: (await channelIn(principal, params.id)).id }), params.version),
    });
    route(app, {
      method: 'DELETE',
      url: '/channels/:id/memory',
      tag: 'memory',
      summary: "Clear a channel's memory: every version is deleted; the next turn starts empty (audited)",
      role: 'admin',
      params: z.strictObject({ id }),
      handler: async ({ params, principal }) => {
        const channel = await channelIn(principal, params.id);
        return clear(principal, memoryScope({ kind: 'channel', channelId: channel.id }), { channel: channel.id });
      },
    });
    route(app, {
      method: 'GET',
      url: '/members/:id/memory',
      tag: 'memory',
      summary: "The memory of a member's DM and its versions (the member, or an admin)",
      role: 'member',
      params: z.strictObject({ id }),
      handler: async ({ params, principal }) => current(await readableDmScope(principal, params.id)),
    });
    route(app, {
      method: 'GET',
      url: '/members/:id/memory/versions/:version',
      tag: 'memory',
      summary: "One version of the memory of a member's DM (the member, or an admin)",
      role: 'member',
      params: z.strictObject({ id, version }),
      handler: async ({ params, principal }) => oneVersion(await readableDmScope(principal, params.id), params.version),
    });
    route(app, {
      method: 'DELETE',
      url: '/members/:id/memory',
      tag: 'memory',
      summary: "Clear the memory of a member's DM (the member, or an admin; audited)",
      role: 'member',
      params: z.strictObject({ id }),
      handler: async ({ params, principal }) => {
        const member = await dmMember(principal, params.id, 'clear');
        return clear(principal, memoryScope({ kind: 'dm', memberId: member.id }), { member: member.id });
      },
    });
  };
}

function versionView(v: MemoryVersion) {
  return { scope: v.scope, version: v.version, content: v.content, bytes: v.bytes, createdAt: v.createdAt, session: v.sessionId, turn: v.turnId ?? null, baseVersion: v.baseVersion ?? null };
}
