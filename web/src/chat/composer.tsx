import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { postMessage, placeKey, type Place, type Posted } from './chat-api';
import { askForNotifications } from './notify';

/** Drafts live in this tab's sessionStorage, per thread: text only (never a token). */
const draftKey = (place: Place, thread: string | undefined) => `tagbox.chat.draft.${placeKey(place)}.${thread ?? 'new'}`;

function readDraft(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}

function writeDraft(key: string, text: string): void {
  try {
    if (text) sessionStorage.setItem(key, text);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage full or off: the draft lives as long as the page.
  }
}

/**
 * The message box: Enter sends, Shift+Enter is a new line. A send keeps its
 * Idempotency-Key until it succeeds, so sending the same text again after a
 * failure (the answer was lost, not the message) does not post it twice.
 */
export function Composer(props: { place: Place; thread?: string; label: string; autoFocus: boolean; onPosted: (posted: Posted) => void }) {
  const key = draftKey(props.place, props.thread);
  const [text, setText] = useState(() => readDraft(key));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; refused: boolean } | undefined>();
  const pending = useRef<{ text: string; key: string } | undefined>();
  const box = useRef<HTMLTextAreaElement>(null);
  const id = useId();

  useEffect(() => {
    setText(readDraft(key));
    setError(undefined);
    pending.current = undefined;
    if (props.autoFocus) box.current?.focus();
  }, [key]);

  const change = (value: string) => {
    setText(value);
    writeDraft(key, value);
  };

  const send = async () => {
    const message = text;
    if (!message.trim() || busy) return;
    askForNotifications();
    if (pending.current?.text !== message) pending.current = { text: message, key: crypto.randomUUID() };
    setBusy(true);
    setError(undefined);
    try {
      const posted = await postMessage(props.place, message, props.thread, pending.current.key);
      pending.current = undefined;
      writeDraft(key, '');
      setText('');
      props.onPosted(posted);
    } catch (e) {
      const refused = e instanceof ApiError && e.code === 'refused';
      setError({ message: e instanceof Error ? e.message : String(e), refused });
      // A refusal is posted in its thread: show that thread (a new one, when this started it).
      const thread = (e as { body?: { thread?: unknown } }).body?.thread;
      if (refused) {
        pending.current = undefined;
        if (typeof thread === 'string' && thread !== props.thread) props.onPosted({ thread, message: '' });
      }
    } finally {
      setBusy(false);
      // Focus returns where the member was typing.
      setTimeout(() => box.current?.focus(), 0);
    }
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <label for={id} class="composer-label">
        {props.label}
      </label>
      {error && (
        <p class={error.refused ? 'composer-refused' : 'error-note'} role="alert">
          {error.refused ? `Not sent — the agent will not take it: ${error.message}` : `Not sent: ${error.message}`}
        </p>
      )}
      <div class="composer-row">
        <textarea
          id={id}
          ref={box}
          rows={2}
          value={text}
          disabled={busy}
          placeholder="Message the agent…"
          aria-describedby={`${id}-hint`}
          onInput={(e) => change((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <button type="submit" class="btn btn-primary" disabled={busy || !text.trim()} aria-busy={busy ? true : undefined}>
          {busy ? 'Sending…' : 'Send'}
        </button>
      </div>
      <p id={`${id}-hint`} class="composer-hint">
        Enter sends · Shift+Enter adds a line
      </p>
    </form>
  );
}
