import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { z, type ZodType } from 'zod';
import { describeZodError } from './error-handler.js';
import { badRequest, forbidden, unauthenticated } from './http-errors.js';
import type { Principal } from './principal.js';
import { roleAtLeast, type Role } from './roles.js';

/**
 * One route of the API: its schemas (zod, checked here at the edge and
 * published as JSON Schema in the OpenAPI document) and the least role that
 * may call it. A handler only runs for an authorised caller with parsed input.
 */
export interface RouteSpec<B, Q, P> {
  method: HTTPMethods;
  url: string;
  summary: string;
  tag: string;
  /** Least role; 'public' needs no credential. */
  role: Role | 'public';
  body?: ZodType<B>;
  query?: ZodType<Q>;
  params?: ZodType<P>;
  /** Fastify's request log lines for this route (warn: none for a normal request, when the URL carries a credential). */
  logLevel?: 'warn';
  /** Status of a successful answer (default 200; 204 sends no body). */
  status?: number;
  handler(input: { body: B; query: Q; params: P; principal: Principal; request: FastifyRequest; reply: FastifyReply }): Promise<unknown>;
}

export function route<B = undefined, Q = undefined, P = undefined>(app: FastifyInstance, spec: RouteSpec<B, Q, P>): void {
  app.route({
    method: spec.method,
    url: spec.url,
    ...(spec.logLevel ? { logLevel: spec.logLevel } : {}),
    schema: {
      summary: spec.summary,
      tags: [spec.tag],
      ...(spec.role === 'public' ? {} : { security: [{ bearer: [] }], description: `Requires the ${spec.role} role or higher.` }),
      ...(spec.body ? { body: jsonSchema(spec.body) } : {}),
      ...(spec.query ? { querystring: jsonSchema(spec.query) } : {}),
      ...(spec.params ? { params: jsonSchema(spec.params) } : {}),
    },
    handler: async (request, reply) => {
      const principal = authorise(request.principal, spec.role);
      const input = {
        body: parse(spec.body, request.body, 'body'),
        query: parse(spec.query, request.query, 'query'),
        params: parse(spec.params, request.params, 'params'),
        principal,
        request,
        reply,
      };
      const result = await spec.handler(input);
      // The handler answered itself (a stream, or a status chosen at run time).
      if (reply.sent) return reply;
      if (spec.status === 204) return reply.status(204).send();
      return reply.status(spec.status ?? 200).send(result);
    },
  });
}

function authorise(principal: Principal | undefined, role: Role | 'public'): Principal {
  if (role === 'public') return principal as Principal;
  if (!principal) throw unauthenticated('sign in: send "Authorization: Bearer tbx_..." with an API token');
  if (!roleAtLeast(principal.role, role)) throw forbidden(`this needs the ${role} role; your token has ${principal.role}`);
  return principal;
}

function parse<T>(schema: ZodType<T> | undefined, data: unknown, where: string): T {
  if (!schema) return undefined as T;
  if (where === 'body' && data === undefined) throw badRequest('body: expected a JSON object (Content-Type: application/json)');
  const result = schema.safeParse(data);
  if (!result.success) throw badRequest(describeZodError(result.error, where));
  return result.data;
}

/** JSON Schema of what callers send (transforms describe their input). */
export function jsonSchema(schema: ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}
