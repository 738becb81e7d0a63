import type { Place } from '../access/effective-policy.js';

/**
 * The session layer's vocabulary (DESIGN.md "Sessions and turns"). Rows stay
 * in the *-repo.ts files; everything else sees these.
 */
/** Where a session lives: the access layer's place (a channel acts as the agent; a member's DM as the member). */
export type SessionPlace = Place;

export type Identity = 'agent' | 'member';

export interface Session {
  /** Also the thread's id in the API. */
  id: string;
  orgId: string;
  workspaceId: string;
  place: SessionPlace;
  threadKey: string;
  identity: Identity;
  engine: string;
  createdBy: string | undefined;
  sandboxHolder: string | undefined;
  lastActivityAt: string;
  createdAt: string;
}

export type AuthorKind = 'member' | 'agent' | 'system';

export interface Author {
  kind: AuthorKind;
  id?: string;
  name?: string;
}

export interface Message {
  id: string;
  author: Author;
  text: string;
  ts: string;
  /** An earlier message of the thread the surface supplied when the agent was tagged mid-thread. */
  context?: true;
}

export const TURN_STATUSES = ['queued', 'running', 'done', 'cancelled', 'interrupted', 'failed'] as const;
export type TurnStatus = (typeof TURN_STATUSES)[number];

export interface Turn {
  id: string;
  sessionId: string;
  orgId: string;
  seq: number;
  status: TurnStatus;
  trigger: 'message' | 'schedule';
  triggeredBy: string | undefined;
  holder: string | undefined;
  cancelRequestedBy: string | undefined;
  createdAt: string;
}

/** The event log's event names, exactly as CONTRACT.md's SSE stream names them. */
export const EVENT_TYPES = ['message', 'progress', 'notice', 'status', 'usage', 'error', 'done'] as const;
export type SessionEventType = (typeof EVENT_TYPES)[number];

export interface SessionEvent {
  seq: number;
  type: SessionEventType;
  turn: string | undefined;
  data: Record<string, unknown>;
  ts: string;
}

export function placeKey(place: SessionPlace): string {
  return place.kind === 'channel' ? `channel:${place.channelId}` : `dm:${place.memberId}`;
}

export function parsePlaceKey(key: string): SessionPlace {
  const [kind, id] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  return kind === 'channel' ? { kind: 'channel', channelId: id } : { kind: 'dm', memberId: id };
}

/** Where a session is, as its audit events say it. */
export function placeAuditFields(place: SessionPlace): Record<string, string> {
  return place.kind === 'channel' ? { place: 'channel', channel: place.channelId } : { place: 'dm', member: place.memberId };
}
