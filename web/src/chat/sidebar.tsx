import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { Link } from '../router';
import { relative } from '../ui/parts';
import { listThreads, placePath, type Channel, type Place, type ThreadSummary } from './chat-api';

/** Places (channels, the DM) and the selected place's threads. */
export function Sidebar(props: { channels: Channel[] | undefined; place: Place | undefined; thread: string | undefined; tick: number }) {
  const { channels, place, thread } = props;
  const here = (p: Place) => (place?.kind === p.kind && (p.kind === 'dm' || (place.kind === 'channel' && place.channelId === p.channelId)) ? 'page' : undefined);
  return (
    <div class="chat-side-inner">
      <nav aria-label="Places">
        <h2 class="side-heading">Channels</h2>
        <ul class="side-list">
          {channels?.map((c) => (
            <li key={c.id}>
              <Link href={placePath({ kind: 'channel', channelId: c.id })} aria-current={thread ? undefined : here({ kind: 'channel', channelId: c.id })} class={here({ kind: 'channel', channelId: c.id }) ? 'side-here' : undefined}>
                <span aria-hidden="true">{c.isPrivate ? '🔒' : '#'}</span> {c.name}
              </Link>
            </li>
          ))}
          {channels?.length === 0 && <li class="side-empty">No channels you may use</li>}
        </ul>
        <h2 class="side-heading">Direct</h2>
        <ul class="side-list">
          <li>
            <Link href="/chat/dm" aria-current={thread ? undefined : here({ kind: 'dm' })} class={here({ kind: 'dm' }) ? 'side-here' : undefined}>
              <span aria-hidden="true">✦</span> Agent (your DM)
            </Link>
          </li>
        </ul>
      </nav>
      {place && <Threads place={place} thread={thread} tick={props.tick} />}
    </div>
  );
}

function Threads({ place, thread, tick }: { place: Place; thread: string | undefined; tick: number }) {
  const [threads, setThreads] = useState<ThreadSummary[] | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [poll, setPoll] = useState(0);
  const key = place.kind === 'channel' ? place.channelId : 'dm';
  useEffect(() => setThreads(undefined), [key]);
  useEffect(() => {
    const abort = new AbortController();
    listThreads(place, abort.signal).then(
      (r) => {
        setThreads(r.threads);
        setError(undefined);
      },
      (e: unknown) => !abort.signal.aborted && setError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e))),
    );
    return () => abort.abort();
  }, [key, tick, poll]);
  // Others' threads appear without a reload; a hidden tab does not ask.
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === 'visible' && setPoll((n) => n + 1), 15_000);
    return () => clearInterval(timer);
  }, []);
  return (
    <nav aria-label="Threads" class="side-threads">
      <div class="side-threads-head">
        <h2 class="side-heading">Threads</h2>
        <Link class="btn btn-primary btn-small" href={placePath(place)}>
          New thread
        </Link>
      </div>
      {error && <p class="side-empty">{error.status === 404 ? 'Threads cannot be listed here.' : `Threads could not be loaded: ${error.message}`}</p>}
      {threads?.length === 0 && <p class="side-empty">No threads yet: start one.</p>}
      <ul class="side-list thread-list">
        {threads?.map((t) => (
          <li key={t.thread}>
            <Link href={placePath(place, t.thread)} aria-current={t.thread === thread ? 'page' : undefined}>
              <span class="thread-item-title">{t.title || 'Untitled thread'}</span>
              <span class="thread-item-meta">
                {t.state !== 'idle' && <span class={`badge badge-${t.state}`}>{t.state}</span>}
                {t.startedBy?.name ?? 'someone'} · {relative(new Date(t.lastActivity))}
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
