/**
 * Errors the API answers with. Every answer is `{error: {code, message}}`;
 * the message names the field or the thing that was wrong.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, code = 'invalid_input') => new HttpError(400, code, message);
export const unauthenticated = (message: string) => new HttpError(401, 'unauthenticated', message);
export const forbidden = (message: string) => new HttpError(403, 'forbidden', message);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);
export const unavailable = (message: string, code = 'unavailable') => new HttpError(503, code, message);
