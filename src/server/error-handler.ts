import type { FastifyError, FastifyInstance } from 'fastify';
import { ZodError } from 'zod';
import { isTagboxError, type TagboxError } from '../errors.js';
import { isUniqueViolation } from '../store/constraint-errors.js';
import { HttpError } from './http-errors.js';

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Any thrown value -> status, code and a message fit to show the caller. */
export function toHttpError(error: unknown, where = 'body'): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ZodError) return new HttpError(400, 'invalid_input', describeZodError(error, where));
  if (isTagboxError(error)) return fromTagboxError(error);
  // A unique constraint that a concurrent writer hit first: a conflict, not a crash.
  if (isUniqueViolation(error)) {
    return new HttpError(409, 'conflict', 'it already exists');
  }
  const fe = error as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new HttpError(fe.statusCode, (fe.code ?? 'bad_request').toLowerCase(), fe.message ?? 'bad request');
  }
  return new HttpError(500, 'internal', 'internal error (see the server log)');
}

/** `body.connections[0].inject.header: expected ...` — the first issue, with its path. */
export function describeZodError(error: ZodError, where: string): string {
  const issue = error.issues[0];
  if (!issue) return `${where}: invalid`;
  const path = issue.path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), where);
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${path}: ${issue.message}${more}`;
}

function fromTagboxError(error: TagboxError): HttpError {
  const code = error.code;
  if (code === 'not_found' || code.endsWith('_not_found')) return new HttpError(404, code, error.message);
  if (code === 'forbidden') return new HttpError(403, code, error.message);
  if (code === 'unauthenticated') return new HttpError(401, code, error.message);
  if (code === 'conflict' || code.endsWith('_exists') || code.endsWith('_conflict')) return new HttpError(409, code, error.message);
  if (code === 'vault_not_initialized' || code === 'vault_unavailable' || code === 'database_unavailable') return new HttpError(503, code, error.message);
  if (error.exitCode === 2) return new HttpError(400, code, error.message);
  return new HttpError(500, code, error.message);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const http = toHttpError(error);
    if (http.status >= 500) request.log.error({ err: error }, 'request failed');
    const body: ErrorBody = { error: { code: http.code, message: http.message } };
    return reply.status(http.status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } };
    return reply.status(404).send(body);
  });
}
