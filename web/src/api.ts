/**
 * The one way the app talks to the server: same-origin fetch with the session
 * cookie, JSON both ways, and the CSRF token on every state-changing request
 * (the server refuses a cookie-authenticated POST/PUT/PATCH/DELETE without it).
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The field the server named (`connections[0].secret`), when it named one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | undefined;
let onSignedOut: (() => void) | undefined;

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when a request finds the session gone (expired, signed out elsewhere). */
export function onUnauthenticated(handler: () => void): void {
  onSignedOut = handler;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export async function api<T = unknown>(method: string, path: string, body?: unknown, init: { signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (!SAFE.has(method) && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path.startsWith('/') ? path : `/api/v1/${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const data = text ? safeJson(text) : undefined;
  if (!response.ok) {
    const error = errorOf(response.status, data, text);
    if (response.status === 401 && !path.includes('auth/')) onSignedOut?.();
    throw error;
  }
  return data as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `{error: {code, message}}`; a message `body.x.y: expected …` names field `x.y`. */
export function errorOf(status: number, data: unknown, text = ''): ApiError {
  const error = (data as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : text.slice(0, 200) || `the server answered ${status}`;
  const field = /^(?:body|query|params)\.([^:\s]+): /.exec(message)?.[1];
  return new ApiError(status, code, message, field);
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>('GET', path, undefined, signal ? { signal } : {});
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body ?? {});
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const patch = <T>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const del = <T>(path: string, body?: unknown) => api<T>('DELETE', path, body);

/** A path segment, encoded. */
export const seg = (value: string) => encodeURIComponent(value);

/**
 * POST with extra headers (the chat's Idempotency-Key). On failure the
 * ApiError also carries the answer's body (`.body`): a refused message names
 * the thread its reason was posted in.
 */
export async function postWith<T>(path: string, body: unknown, extra: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/json', ...extra };
  if (csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(`/api/v1/${path}`, { method: 'POST', headers, credentials: 'same-origin', body: JSON.stringify(body) });
  const text = await response.text();
  const data = text ? safeJson(text) : undefined;
  if (!response.ok) {
    if (response.status === 401) onSignedOut?.();
    throw Object.assign(errorOf(response.status, data, text), { body: data });
  }
  return data as T;
}
