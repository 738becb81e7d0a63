import { failure } from '../../errors.js';
import type { OAuth2ClientCredential } from '../kinds.js';
import type { FetchedToken } from './token-cache.js';
import type { TokenHttpClient } from './token-http.js';
import { parseJsonResponse } from './token-response.js';

/** Without expires_in (it is only RECOMMENDED by RFC 6749), a token is kept this long. */
const DEFAULT_LIFETIME_MS = 60_000;

/** OAuth 2.0 client credentials grant (RFC 6749 section 4.4). */
export async function fetchClientCredentialsToken(cred: OAuth2ClientCredential, http: TokenHttpClient, nowMs: number): Promise<FetchedToken> {
  const url = new URL(cred.tokenUrl);
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (cred.scope) form.set('scope', cred.scope);
  if (cred.audience) form.set('audience', cred.audience);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'user-agent': 'tagbox',
  };
  if (cred.clientAuth === 'basic') {
    // RFC 6749 2.3.1: id and secret are form-encoded before Basic encoding.
    const user = formEncode(cred.clientId);
    const pass = formEncode(cred.clientSecret);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  } else {
    form.set('client_id', cred.clientId);
    form.set('client_secret', cred.clientSecret);
  }
  const response = await http.request({ method: 'POST', url, headers, body: Buffer.from(form.toString()) });
  const body = parseJsonResponse(response, url, 'OAuth 2.0 token');
  const token = body.access_token;
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
    throw failure(`OAuth 2.0 token from ${url.origin}${url.pathname}: the answer has no usable "access_token"`, 'token_fetch_failed');
  }
  if (typeof body.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer') {
    throw failure(`OAuth 2.0 token from ${url.origin}${url.pathname}: token_type is not Bearer`, 'token_fetch_failed');
  }
  const expiresIn = Number(body.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_LIFETIME_MS;
  return { token, expiresAt: nowMs + lifetime };
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
