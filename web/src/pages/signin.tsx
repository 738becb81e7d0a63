import { useEffect, useState } from 'preact/hooks';
import { ApiError, get, post, setCsrfToken } from '../api';
import { navigate } from '../router';
import { useTitle } from '../ui/hooks';

interface AuthOptions {
  link: boolean;
  oidc: { name: string; start: string } | null;
}

/**
 * Sign-in. A one-time link carries its token in the fragment (`/signin#token=…`):
 * browsers never send a fragment to the server, so the token is not in any
 * log or Referer; this page takes it out of the address bar at once and
 * exchanges it for a session cookie.
 */
export function SignIn({ reason, onSignedIn }: { reason?: string | undefined; onSignedIn: () => void }) {
  useTitle('Sign in');
  const [options, setOptions] = useState<AuthOptions | undefined>();
  const [status, setStatus] = useState<{ kind: 'idle' | 'working' | 'failed'; message?: string }>({ kind: 'idle' });

  useEffect(() => {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get('token');
    const error = fragment.get('error');
    const next = new URLSearchParams(location.search).get('next');
    if (token || error) history.replaceState(null, '', location.pathname + location.search);
    if (error) setStatus({ kind: 'failed', message: error });
    if (token) {
      setStatus({ kind: 'working' });
      signInWithLink(token).then(
        (session) => {
          setCsrfToken(session.csrfToken);
          navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/chat', { replace: true });
          onSignedIn();
        },
        (e: unknown) => setStatus({ kind: 'failed', message: e instanceof ApiError ? e.message : String(e) }),
      );
    }
    get<AuthOptions>('auth/options').then(setOptions, () => setOptions({ link: true, oidc: null }));
  }, []);

  const next = location.pathname !== '/signin' ? location.pathname : new URLSearchParams(location.search).get('next') ?? '/chat';
  return (
    <main class="signin" id="main">
      <section class="signin-card" aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Tagbox</h1>
        {reason && status.kind === 'idle' && <p class="notice-line">{reason}</p>}
        {status.kind === 'working' && <p role="status">Signing you in…</p>}
        {status.kind === 'failed' && (
          <p class="error-note" role="alert">
            {status.message}
          </p>
        )}
        {options?.oidc && (
          <p>
            <a class="btn btn-primary" href={`${options.oidc.start}?next=${encodeURIComponent(next)}`}>
              Sign in with {options.oidc.name}
            </a>
          </p>
        )}
        <p class="hint">
          Have a sign-in link? Open it in this browser. Each link works once. An admin can make you a new one in Admin → Members, or on the server:
          <code> npx tagbox login-link --member &lt;id&gt;</code>
        </p>
      </section>
    </main>
  );
}

/**
 * Exchanges a link's token for a session. A browser that is still signed in
 * (another member's session) must show that session's CSRF token even to sign
 * in anew: fetch it and try once more.
 */
async function signInWithLink(token: string): Promise<{ csrfToken: string }> {
  try {
    return await post<{ csrfToken: string }>('auth/link', { token });
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 'csrf') throw e;
    const me = await get<{ csrfToken?: string }>('me');
    setCsrfToken(me.csrfToken);
    return post<{ csrfToken: string }>('auth/link', { token });
  }
}
