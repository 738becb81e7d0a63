import type { FastifyRequest } from 'fastify';
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

/** One way of turning a request into a principal; undefined when it does not apply. */
export type PrincipalResolver = (request: FastifyRequest) => Promise<Principal | undefined>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}
