import type { FastifyRequest } from 'fastify';
import { actorFields, type Actor } from '../access/actor.js';
import type { Role } from './roles.js';

/**
 * Who is calling. Resolved once per request by the auth plugin; routes only
 * ever look at this, so browser sessions can be added later as one more
 * resolver without touching a route.
 */
export interface Principal {
  via: 'token' | 'session';
  /** The API token's id (via token); the session id later. */
  credentialId: string;
  memberId: string;
  orgId: string;
  role: Role;
}

/**
 * The caller as the actor of a change: always the member the credential
 * belongs to, with the credential itself (`token:<id>`) for attribution.
 */
export function actorOf(principal: Principal): Actor {
  return { id: principal.memberId, credential: `${principal.via}:${principal.credentialId}` };
}

/** The actor fields of an audit event a route writes itself. */
export function auditActor(principal: Principal): { actor: string; credential?: string } {
  return actorFields(actorOf(principal));
}

/** One way of turning a request into a principal; undefined when it does not apply. */
export type PrincipalResolver = (request: FastifyRequest) => Promise<Principal | undefined>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}
