import { failure } from '../../errors.js';
import type { TokenHttpResponse } from './token-http.js';

/**
 * A token endpoint's answer as a JSON object, or a clear error. Error bodies
 * are summarised by status and, for OAuth, the standard `error` code only:
 * an error body can echo what was sent.
 */
export function parseJsonResponse(response: TokenHttpResponse, url: URL, what: string): Record<string, unknown> {
  const where = `${url.origin}${url.pathname}`;
  let body: unknown;
  try {
    body = JSON.parse(response.body.toString('utf8'));
  } catch {
    body = undefined;
  }
  if (response.status < 200 || response.status > 299) {
    const code = body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? (body as { error: string }).error : undefined;
    const safeCode = code && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? ` (${code})` : '';
    throw failure(`${what} request to ${where} was refused: HTTP ${response.status}${safeCode}`, 'token_fetch_failed');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw failure(`${what} request to ${where}: the answer is not a JSON object`, 'token_fetch_failed');
  }
  return body as Record<string, unknown>;
}
