import type { ApiResponse } from './harness.js';

/** A browser's view of the API: the session cookie it holds, the CSRF token its page was given. */
export interface Browser {
  cookie: string;
  csrfToken: string;
  /** The Set-Cookie header that signed it in, as sent. */
  setCookie: string;
  signIn: ApiResponse;
  request(method: string, path: string, options?: { body?: unknown; csrf?: string | null; headers?: Record<string, string> }): Promise<ApiResponse & { headers: Headers }>;
}

export async function send(url: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<ApiResponse & { headers: Headers }> {
  const res = await fetch(url + path, {
    method,
    redirect: 'manual',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** The token of a sign-in URL: it is in the fragment, which a browser never sends. */
export function tokenOf(signInUrl: string): string {
  const token = new URL(signInUrl).hash.match(/^#token=(tbl_[A-Za-z0-9_-]+)$/)?.[1];
  if (!token) throw new Error(`not a sign-in URL: ${signInUrl}`);
  return token;
}

/** Signs in with a link's token as the sign-in page does; throws unless it worked. */
export async function signIn(url: string, token: string): Promise<Browser> {
  const res = await send(url, 'POST', '/api/v1/auth/link', {}, { token });
  if (res.status !== 200) throw new Error(`sign-in: ${res.status} ${res.text}`);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = /^tagbox_session=([^;]+)/.exec(setCookie)?.[1];
  if (!cookie) throw new Error(`sign-in set no cookie: ${setCookie}`);
  return browserWith(url, cookie, res.body.csrfToken as string, setCookie, res);
}

export function browserWith(url: string, cookie: string, csrfToken: string, setCookie = '', signInRes: ApiResponse = { status: 0, body: undefined, text: '' }): Browser {
  return {
    cookie,
    csrfToken,
    setCookie,
    signIn: signInRes,
    request: (method, path, options = {}) => {
      const csrf = options.csrf === undefined ? csrfToken : options.csrf;
      return send(url, method, path, { cookie: `tagbox_session=${cookie}`, ...(csrf !== null ? { 'x-csrf-token': csrf } : {}), ...(options.headers ?? {}) }, options.body);
    },
  };
}
