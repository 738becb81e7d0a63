import { useEffect, useRef, useState } from 'preact/hooks';
import { match, navigate } from '../router';
import { ErrorNote, Loading } from '../ui/parts';
import { useGet } from '../ui/hooks';
import { placePath, type Channel, type Place, type Posted } from './chat-api';
import { Composer } from './composer';
import { setChatTitle } from './notify';
import { Sidebar } from './sidebar';
import { ThreadPane } from './thread-pane';
import './chat.css';

/** Which place and thread a path names (/chat/c/:channelId[/t/:thread], /chat/dm[/t/:thread]). */
export function parseChatPath(path: string): { place?: Place; thread?: string } {
  const c = match('/chat/c/:channelId', path) ?? match('/chat/c/:channelId/t/:thread', path);
  if (c) return { place: { kind: 'channel', channelId: c.channelId! }, ...(c.thread ? { thread: c.thread } : {}) };
  const d = match('/chat/dm', path) ?? match('/chat/dm/t/:thread', path);
  if (d) return { place: { kind: 'dm' }, ...(d.thread ? { thread: d.thread } : {}) };
  return {};
}

/** The chat: places and threads on the left (folded away on a phone), the thread or a new one on the right. */
export function ChatPage({ path }: { path: string }) {
  const channels = useGet<Channel[]>('channels');
  const { place, thread } = parseChatPath(path);
  const [tick, setTick] = useState(0);
  const [sideOpen, setSideOpen] = useState(false);
  const channel = place?.kind === 'channel' ? channels.data?.find((c) => c.id === place.channelId) : undefined;
  const placeName = place?.kind === 'dm' ? 'your DM' : channel ? `#${channel.name}` : place ? 'this channel' : 'Chat';

  // /chat alone: the first channel (#general on a new install), else the DM.
  useEffect(() => {
    if (place || !channels.data) return;
    const first = channels.data.find((c) => c.name === 'general') ?? channels.data[0];
    navigate(first ? placePath({ kind: 'channel', channelId: first.id }) : '/chat/dm', { replace: true });
  }, [path, channels.data]);
  useEffect(() => setChatTitle(placeName), [placeName]);
  // Picking a place or thread folds the list away again (on a phone).
  useEffect(() => setSideOpen(false), [path]);

  // Entering a thread focuses its composer; the page a member lands on does not take the focus from the
  // top of the page (the skip link comes first) — only once they have moved within the chat.
  const landing = useRef<string | undefined>();
  const moved = useRef(false);
  if (place && landing.current === undefined) landing.current = path;
  if (landing.current !== undefined && path !== landing.current) moved.current = true;

  const activity = () => setTick((t) => t + 1);
  return (
    <div class={`chat${sideOpen ? ' chat-side-open' : ''}`}>
      <button type="button" class="btn side-toggle" aria-expanded={sideOpen} aria-controls="chat-side" onClick={() => setSideOpen(!sideOpen)}>
        <span aria-hidden="true">☰</span> {sideOpen ? 'Hide channels and threads' : 'Channels and threads'}
      </button>
      <aside id="chat-side" class="chat-side" aria-label="Channels and threads">
        {channels.loading && !channels.data && <Loading what="channels" />}
        <ErrorNote error={channels.error} />
        <Sidebar channels={channels.data} place={place} thread={thread} tick={tick} />
      </aside>
      <div class="chat-main">
        {place && thread && <ThreadPane key={thread} place={place} placeName={placeName} thread={thread} onActivity={activity} />}
        {place && !thread && <NewThread place={place} placeName={placeName} autoFocus={moved.current} onPosted={activity} />}
        {!place && <Loading what="the chat" />}
      </div>
    </div>
  );
}

function NewThread({ place, placeName, autoFocus, onPosted }: { place: Place; placeName: string; autoFocus: boolean; onPosted: () => void }) {
  const posted = (p: Posted) => {
    onPosted();
    navigate(placePath(place, p.thread));
  };
  return (
    <section class="thread thread-new" aria-labelledby="new-thread-title">
      <header class="thread-head">
        <div class="thread-title">
          <span class="thread-place">{placeName}</span>
          <h1 id="new-thread-title">New thread</h1>
        </div>
      </header>
      <div class="log log-empty">
        <p class="empty">
          {place.kind === 'dm'
            ? 'In your DM the agent acts as you, with your own connectors. What you write starts a new thread.'
            : `Ask the agent something in ${placeName}: your message starts a new thread that everyone in the channel can follow.`}
        </p>
      </div>
      <Composer place={place} label={`New thread in ${placeName}`} autoFocus={autoFocus} onPosted={posted} />
    </section>
  );
}
