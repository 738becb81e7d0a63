import { useEffect, useState } from 'preact/hooks';
import { ApiError, get, onUnauthenticated, post, setCsrfToken } from './api';
import { AdminPage } from './admin/admin-page';
import { ChatPage } from './chat/chat-page';
import { NotFound } from './pages/not-found';
import { SignIn } from './pages/signin';
import { Link, match, navigate, usePath } from './router';
import { isAdmin, MeContext, type Me } from './session';
import { Loading } from './ui/parts';

type State = { kind: 'loading' } | { kind: 'signed-out'; reason?: string } | { kind: 'signed-in'; me: Me } | { kind: 'error'; message: string };

/** The shell: who is signed in, the top bar, and which page the path names. */
export function App() {
  const [state, setState] = useState<State>({ kind: 'loading' });
  const path = usePath();

  const load = () =>
    get<Me>('me').then(
      (me) => {
        setCsrfToken(me.csrfToken);
        setState({ kind: 'signed-in', me });
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) setState({ kind: 'signed-out' });
        else setState({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
      },
    );

  useEffect(() => {
    onUnauthenticated(() => {
      setCsrfToken(undefined);
      setState({ kind: 'signed-out', reason: 'Your session has ended. Sign in again to go on.' });
    });
    // Opening a sign-in link: sign in first (the page asks who it is afterwards).
    if (location.pathname === '/signin' && location.hash.includes('token=')) setState({ kind: 'signed-out' });
    else void load();
  }, []);

  if (state.kind === 'loading') return <Loading what="Tagbox" />;
  if (state.kind === 'error') return <p class="error-note" role="alert">Tagbox cannot be reached: {state.message}</p>;
  if (state.kind === 'signed-out' || path === '/signin') {
    if (state.kind === 'signed-in' && !location.hash.includes('token=')) {
      navigate('/chat', { replace: true });
      return null;
    }
    return <SignIn reason={state.kind === 'signed-out' ? state.reason : undefined} onSignedIn={() => void load()} />;
  }
  return (
    <MeContext.Provider value={state.me}>
      <Shell me={state.me} path={path} onSignedOut={() => setState({ kind: 'signed-out', reason: 'You are signed out.' })} />
    </MeContext.Provider>
  );
}

function Shell({ me, path, onSignedOut }: { me: Me; path: string; onSignedOut: () => void }) {
  useEffect(() => {
    if (path === '/' || path === '') navigate('/chat', { replace: true });
  }, [path]);
  const section = path.startsWith('/admin') ? 'admin' : 'chat';
  const signOut = async () => {
    try {
      await post('auth/signout');
    } finally {
      setCsrfToken(undefined);
      onSignedOut();
      navigate('/signin');
    }
  };
  return (
    <div class={`shell shell-${section}`}>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link class="brand" href="/chat">
          Tagbox
        </Link>
        <nav aria-label="Sections" class="sections">
          <Link href="/chat" aria-current={section === 'chat' ? 'page' : undefined}>
            Chat
          </Link>
          {isAdmin(me) && (
            <Link href="/admin" aria-current={section === 'admin' ? 'page' : undefined}>
              Admin
            </Link>
          )}
        </nav>
        <div class="whoami">
          <span title={`${me.org.name} · ${me.role}`}>
            {me.member.name} <span class="role">{me.role}</span>
          </span>
          <button type="button" class="btn btn-plain" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" class="main">
        <Route path={path} me={me} />
      </main>
    </div>
  );
}

function Route({ path, me }: { path: string; me: Me }) {
  if (path === '/' || path === '' || path === '/chat' || match('/chat/*', path)) return <ChatPage path={path} />;
  if (path === '/admin' || match('/admin/*', path)) {
    if (!isAdmin(me)) return <NotFound what="This page is for admins." />;
    return <AdminPage path={path} />;
  }
  return <NotFound />;
}
