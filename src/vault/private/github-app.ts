import { createPrivateKey, sign } from 'node:crypto';
import { failure } from '../../errors.js';
import type { MintOptions } from '../credentials.js';
import type { GithubAppCredential } from '../kinds.js';
import type { FetchedToken } from './token-cache.js';
import type { TokenHttpClient } from './token-http.js';
import { parseJsonResponse } from './token-response.js';

/**
 * GitHub App installation tokens: a JWT (RS256) signed with the app's private
 * key, exchanged at POST /app/installations/{id}/access_tokens.
 */
export function githubAppJwt(cred: GithubAppCredential, nowMs: number): string {
  const now = Math.floor(nowMs / 1000);
  // iat 60 s in the past allows for clock drift, as GitHub recommends; 10 minutes is GitHub's maximum lifetime.
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: cred.appId }));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), createPrivateKey(cred.privateKey));
  return `${header}.${payload}.${signature.toString('base64url')}`;
}

/** With `narrow`, the token is minted for those repositories (names in the installation's account) and permissions only. */
export async function fetchInstallationToken(cred: GithubAppCredential, http: TokenHttpClient, nowMs: number, narrow?: MintOptions): Promise<FetchedToken> {
  const base = cred.apiUrl.replace(/\/+$/, '');
  const url = new URL(`${base}/app/installations/${encodeURIComponent(cred.installationId)}/access_tokens`);
  const response = await http.request({
    method: 'POST',
    url,
    headers: {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${githubAppJwt(cred, nowMs)}`,
      'x-github-api-version': '2022-11-28',
      'user-agent': 'tagbox',
      ...(narrow ? { 'content-type': 'application/json' } : {}),
    },
    body: narrow ? Buffer.from(JSON.stringify({ ...(narrow.repositories ? { repositories: narrow.repositories } : {}), ...(narrow.permissions ? { permissions: narrow.permissions } : {}) })) : Buffer.alloc(0),
  });
  const body = parseJsonResponse(response, url, 'GitHub App installation token');
  const token = body.token;
  const expiresAt = typeof body.expires_at === 'string' ? Date.parse(body.expires_at) : Number.NaN;
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token) || Number.isNaN(expiresAt)) {
    throw failure(`GitHub App installation token from ${url.origin}${url.pathname}: the answer has no usable "token" and "expires_at"`, 'token_fetch_failed');
  }
  return { token, expiresAt };
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
