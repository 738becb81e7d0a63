/**
 * What every surface hands the session layer (DESIGN.md: the request path).
 * Nothing surface-specific passes this point: the web chat API, Slack and the
 * scheduler each turn what arrived into one Invocation.
 */
export type InvocationPlaceRef = { kind: 'channel'; channelId: string } | { kind: 'dm'; memberId: string } | { kind: 'group-dm' };

export type InvocationTrigger = 'message' | 'schedule';

export interface Invocation {
  workspaceId: string;
  place: InvocationPlaceRef;
  /**
   * The surface's thread key. Undefined: a new thread. With `mustExist`, an
   * unknown key is an error (the web API's threads are Tagbox's own ids);
   * without it, the first message under a key starts that thread (Slack's ts).
   */
  threadKey?: string;
  mustExist?: boolean;
  /** Who asked; undefined when the surface could not tell. */
  memberId: string | undefined;
  text: string;
  trigger: InvocationTrigger;
  /** The surface's own id for this delivery (a retry or duplicate is processed once). */
  dedupeKey?: string;
  /** For a schedule's firing: which schedule, and the fire time it stands for. */
  schedule?: { id: string; fireTime: string };
  /**
   * Earlier messages of the surface's thread, oldest first, when the agent is
   * tagged mid-thread: kept with the thread's first turn as context (the
   * engine reads them; they are not requests). Ignored once the session exists.
   */
  context?: Array<{ author: { id?: string; name?: string }; text: string }>;
}

/** At most this much earlier thread is kept as context (the newest messages win). */
export const CONTEXT_LIMITS = { messages: 50, bytes: 64 * 1024 } as const;

export type InvokeResult =
  | { status: 'accepted'; thread: string; message: string; turn: string; duplicate: boolean }
  | {
      status: 'refused';
      /** The thread the refusal was posted in, when it was posted in one. */
      thread?: string;
      reason: string;
      message: string;
      visibility: 'private' | 'thread';
    };

/** The session layer's entry point, as surfaces see it. */
export interface InvocationPort {
  invoke(invocation: Invocation): Promise<InvokeResult>;
}
