/**
 * Who makes an access change (invariant 6: attribution). `id` is always the
 * real caller — a member id, `operator:<os user>`, `cli:<os user>`, `system` —
 * never someone the caller names. `credential` is what the caller proved who
 * they are with (`token:<id>` for an API token), so an event names the exact
 * token that made it, and a leaked token's changes can be found and undone.
 */
export interface Actor {
  readonly id: string;
  readonly credential?: string;
}

/** Plain strings are an actor without a credential (the CLI, the system, tests). */
export type ActorRef = string | Actor;

/** The actor's fields of an audit event. */
export function actorFields(actor: ActorRef): { actor: string; credential?: string } {
  if (typeof actor === 'string') return { actor };
  return actor.credential ? { actor: actor.id, credential: actor.credential } : { actor: actor.id };
}
