import type { Kysely } from 'kysely';
import { notFound } from '../access/errors.js';
import { checkInvocation, type InvocationCheck } from '../access/invocation.js';
import { getMember } from '../access/members-repo.js';
import type { Channel, Member, Org } from '../access/model.js';
import { getOrg } from '../access/orgs-repo.js';
import { getChannel, getWorkspace } from '../access/workspaces-repo.js';
import type { AuditEventInput } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import { appendEvent } from './event-log.js';
import type { EventHub } from './event-hub.js';
import { CONTEXT_LIMITS, type Invocation, type InvocationPort, type InvokeResult } from './invocation.js';
import { capHead } from '../util/output-limits.js';
import { findByDedupeKey, insertMessage } from './messages-repo.js';
import { placeAuditFields, type Author, type Message, type Session, type SessionEventType, type SessionPlace } from './model.js';
import { findOrCreateSession, findSession, getSession, touchSession } from './sessions-repo.js';
import { dropQueuedTurn, openTurnsOf, queueTurn, requestCancel } from './turns-repo.js';

export interface SessionServiceOptions {
  store: ControlStore;
  audit: AuditLog;
  hub: EventHub;
  /** The engine of a new session when its channel names none. */
  defaultEngine: string;
  maxMessageBytes: number;
  /** Told when a turn was queued (the runner wakes). */
  onQueued?: () => void;
  /** Told when a running turn should stop now (the runner aborts it if it is here). */
  onCancel?: (turnId: string, by: string) => void;
}

/**
 * The session layer's entry point: Invocation -> access check -> session ->
 * message -> queued turn. What a refusal says is posted in the thread; what
 * is accepted is committed in one transaction with its audit events, so a
 * crash loses nothing and a retried delivery (same dedupe key) is one message.
 */
export class SessionService implements InvocationPort {
  constructor(private readonly options: SessionServiceOptions) {}

  private get db(): Kysely<Database> {
    return this.options.store.db;
  }

  async invoke(invocation: Invocation): Promise<InvokeResult> {
    const text = invocation.text.trim();
    if (!text) throw invalidInput('text: expected a message, got an empty one');
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxMessageBytes) throw invalidInput(`text: ${bytes} bytes is over the ${this.options.maxMessageBytes}-byte limit (agent.maxMessageBytes)`);

    if (invocation.dedupeKey) {
      const seen = await findByDedupeKey(this.db, invocation.dedupeKey);
      if (seen) return { status: 'accepted', thread: seen.sessionId, message: seen.message.id, turn: seen.turnId ?? '', duplicate: true };
    }
    const where = await this.resolve(invocation);
    const check = checkInvocation({
      org: where.org,
      member: where.member,
      place: invocation.place.kind,
    });
    if (!check.allowed) return this.refuse(invocation, where, check);

    const place = where.place!;
    try {
      const result = await withWriteTransaction(this.options.store, undefined, async (db) => {
        if (invocation.dedupeKey && (await findByDedupeKey(db, invocation.dedupeKey))) throw new DuplicateDelivery();
        const { session, created } = await this.sessionFor(db, invocation, where, place, check.identity);
        const { turn } = await queueTurn(db, {
          sessionId: session.id,
          orgId: where.org.id,
          trigger: invocation.trigger,
          ...(where.member ? { triggeredBy: where.member.id } : {}),
          postgres: this.options.store.dialect === 'postgres',
        });
        if (created && invocation.context?.length) {
          // Stamped a millisecond apart, before the message that tagged the agent: the thread's order is theirs.
          const kept = contextToKeep(invocation.context);
          const now = Date.now();
          for (const [i, earlier] of kept.entries()) {
            const createdAt = new Date(now - (kept.length - i)).toISOString();
            await insertMessage(db, { sessionId: session.id, author: { kind: 'member', ...earlier.author }, text: earlier.text, turnId: turn.id, context: true, createdAt });
          }
        }
        const author: Author = { kind: 'member', id: where.member!.id, name: where.member!.displayName };
        const message = await insertMessage(db, { sessionId: session.id, author, text, turnId: turn.id, ...(invocation.dedupeKey ? { dedupeKey: invocation.dedupeKey } : {}) });
        await appendEvent(db, session.id, 'message', { ...message }, turn.id);
        await touchSession(db, session.id);
        const audit: AuditEventInput[] = [];
        if (created) {
          audit.push({ type: 'session', action: 'create', outcome: 'ok', actor: where.member!.id, session: session.id, ...placeAuditFields(place), identity: session.identity, engine: session.engine });
        }
        audit.push({
          type: 'invocation',
          outcome: 'accepted',
          actor: where.member!.id,
          session: session.id,
          ...placeAuditFields(place),
          identity: session.identity,
          trigger: invocation.trigger,
          turn: turn.id,
          message: message.id,
          ...(invocation.schedule ? { schedule: invocation.schedule.id, fireTime: invocation.schedule.fireTime } : {}),
        });
        await this.options.audit.appendIn(db, audit);
        return { session, message, turn };
      });
      this.options.hub.notify(result.session.id);
      this.options.onQueued?.();
      return { status: 'accepted', thread: result.session.id, message: result.message.id, turn: result.turn.id, duplicate: false };
    } catch (error) {
      // Two deliveries of one message racing: the second meets the first's key.
      if ((error instanceof DuplicateDelivery || isUniqueViolation(error)) && invocation.dedupeKey) {
        const seen = await findByDedupeKey(this.db, invocation.dedupeKey);
        if (seen) return { status: 'accepted', thread: seen.sessionId, message: seen.message.id, turn: seen.turnId ?? '', duplicate: true };
      }
      throw error;
    }
  }

  /** Posts a message by the agent or the system in a thread, with its event. */
  async post(sessionId: string, author: Author, text: string, turnId?: string): Promise<Message> {
    const message = await withWriteTransaction(this.options.store, undefined, async (db) => {
      const m = await insertMessage(db, { sessionId, author, text, ...(turnId ? { turnId } : {}) });
      await appendEvent(db, sessionId, 'message', { ...m }, turnId);
      return m;
    });
    this.options.hub.notify(sessionId);
    return message;
  }

  /** Appends one event to the thread's log and wakes its readers. */
  async emit(sessionId: string, type: SessionEventType, data: Record<string, unknown>, turnId?: string): Promise<void> {
    await appendEvent(this.db, sessionId, type, data, turnId);
    this.options.hub.notify(sessionId);
  }

  /**
   * Stops the thread's running turn (and drops its queued one). Any
   * participant may; the thread says who stopped it. False when nothing ran.
   */
  async cancel(sessionId: string, by: { id: string; name: string }): Promise<{ cancelled: boolean }> {
    let cancelled = false;
    for (const turn of await openTurnsOf(this.db, sessionId)) {
      if (turn.status === 'running' && (await requestCancel(this.db, turn.id, by.id))) {
        cancelled = true;
        this.options.onCancel?.(turn.id, by.id);
      } else if (turn.status === 'queued' && (await dropQueuedTurn(this.db, turn.id, 'cancelled', `cancelled by ${by.id}`))) {
        cancelled = true;
        await this.post(sessionId, { kind: 'system' }, `Stopped by ${by.name} before it started.`, turn.id);
        await this.emit(sessionId, 'done', { turn: turn.id, status: 'cancelled' }, turn.id);
      }
    }
    if (cancelled) await this.options.audit.append({ type: 'session', action: 'cancel', outcome: 'ok', actor: by.id, session: sessionId });
    return { cancelled };
  }

  async session(id: string): Promise<Session | undefined> {
    return getSession(this.db, id);
  }

  private async resolve(invocation: Invocation): Promise<Resolved> {
    const workspace = await getWorkspace(this.db, invocation.workspaceId);
    if (!workspace) throw notFound(`workspace ${invocation.workspaceId}`);
    const org = (await getOrg(this.db, workspace.orgId))!;
    const found = invocation.memberId ? await getMember(this.db, invocation.memberId) : undefined;
    const member = found && found.workspaceId === workspace.id ? found : undefined;
    let place: SessionPlace | undefined;
    let channel: Channel | undefined;
    if (invocation.place.kind === 'channel') {
      channel = await getChannel(this.db, invocation.place.channelId);
      if (!channel || channel.workspaceId !== workspace.id) throw notFound(`channel ${invocation.place.channelId}`);
      place = { kind: 'channel', channelId: channel.id };
    } else if (invocation.place.kind === 'dm') {
      // A DM is the asker's own conversation with the agent: never someone else's.
      if (member && invocation.place.memberId !== member.id) throw invalidInput('place: a DM belongs to the member who writes in it');
      place = { kind: 'dm', memberId: invocation.place.memberId };
    }
    return { org, member, place, channel, workspaceId: workspace.id };
  }

  private async sessionFor(db: Kysely<Database>, invocation: Invocation, where: Resolved, place: SessionPlace, identity: 'agent' | 'member') {
    if (invocation.threadKey !== undefined && invocation.mustExist) {
      const existing = await findSession(db, where.workspaceId, place, invocation.threadKey);
      if (!existing) throw notFound(`thread ${invocation.threadKey} in this ${place.kind === 'dm' ? 'DM' : 'channel'}`);
      return { session: existing, created: false };
    }
    return findOrCreateSession(db, {
      orgId: where.org.id,
      workspaceId: where.workspaceId,
      place,
      ...(invocation.threadKey !== undefined ? { threadKey: invocation.threadKey } : {}),
      identity,
      engine: where.channel?.engine ?? this.options.defaultEngine,
      ...(where.member ? { createdBy: where.member.id } : {}),
    });
  }

  /** A refusal: audited, and said in the thread when it is for the thread to see. */
  private async refuse(invocation: Invocation, where: Resolved, check: Extract<InvocationCheck, { allowed: false }>): Promise<InvokeResult> {
    let thread: string | undefined;
    const place = where.place;
    if (check.visibility === 'thread' && place && (invocation.threadKey === undefined || !invocation.mustExist || (await findSession(this.db, where.workspaceId, place, invocation.threadKey)))) {
      const { session } = await withWriteTransaction(this.options.store, undefined, (db) =>
        findOrCreateSession(db, {
          orgId: where.org.id,
          workspaceId: where.workspaceId,
          place,
          ...(invocation.threadKey !== undefined ? { threadKey: invocation.threadKey } : {}),
          identity: place.kind === 'dm' ? 'member' : 'agent',
          engine: where.channel?.engine ?? this.options.defaultEngine,
          ...(where.member ? { createdBy: where.member.id } : {}),
        }),
      );
      thread = session.id;
      await this.post(session.id, { kind: 'system' }, check.message);
    }
    await this.options.audit.append({
      type: 'access-denied',
      outcome: 'denied',
      reason: check.reason,
      actor: where.member?.id ?? invocation.memberId ?? 'unknown',
      ...(thread ? { session: thread } : {}),
      ...(place ? placeAuditFields(place) : { place: invocation.place.kind }),
      trigger: invocation.trigger,
      ...(invocation.schedule ? { schedule: invocation.schedule.id } : {}),
    });
    return { status: 'refused', ...(thread ? { thread } : {}), reason: check.reason, message: check.message, visibility: check.visibility };
  }
}

interface Resolved {
  org: Org;
  member: Member | undefined;
  place: SessionPlace | undefined;
  channel: Channel | undefined;
  workspaceId: string;
}

class DuplicateDelivery extends Error {}

/** The newest earlier messages that fit CONTEXT_LIMITS, oldest first; each one capped. */
function contextToKeep(context: NonNullable<Invocation['context']>): NonNullable<Invocation['context']> {
  const kept: NonNullable<Invocation['context']> = [];
  let bytes = 0;
  for (const earlier of [...context].reverse()) {
    const text = capHead(earlier.text.trim(), 8 * 1024);
    if (!text) continue;
    bytes += Buffer.byteLength(text);
    if (kept.length >= CONTEXT_LIMITS.messages || bytes > CONTEXT_LIMITS.bytes) break;
    const author = { ...(earlier.author.id ? { id: earlier.author.id.slice(0, 200) } : {}), ...(earlier.author.name ? { name: earlier.author.name.slice(0, 200) } : {}) };
    kept.push({ author, text });
  }
  return kept.reverse();
}

