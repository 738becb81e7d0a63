import { useEffect, useState } from 'preact/hooks';
import { RichText } from '../text/rich-text';
import { Time } from '../ui/parts';
import { isOpen, type ChatMessage, type Turn } from './thread-model';

/** One message: who, when, what. A system message (a refusal, a stop) is set apart as a note. */
export function MessageView({ message, joined }: { message: ChatMessage; joined?: boolean }) {
  const { author } = message;
  if (author.kind === 'system') {
    return (
      <div class="msg msg-system" role="note" aria-label="From Tagbox">
        <span class="msg-system-mark" aria-hidden="true">
          i
        </span>
        <RichText text={message.text} />
      </div>
    );
  }
  const name = author.kind === 'agent' ? 'Agent' : (author.name ?? 'Someone');
  return (
    <article class={`msg msg-${author.kind}`} aria-label={`${name}, message`}>
      <header class="msg-head">
        <span class={`avatar avatar-${author.kind}`} aria-hidden="true">
          {author.kind === 'agent' ? '✦' : name.charAt(0).toUpperCase()}
        </span>
        <strong class="msg-author">{name}</strong>
        <Time iso={message.ts} />
        {joined && <span class="msg-joined">joined the running turn</span>}
      </header>
      <div class="msg-body">
        <RichText text={message.text} />
      </div>
    </article>
  );
}

const ENDED: Record<string, string> = {
  cancelled: 'Stopped',
  interrupted: 'Interrupted',
  failed: 'Failed',
};

/** A turn: the agent's answer, its work folded under it, its notices and errors set apart. */
export function TurnView({ turn, answers, notes }: { turn: Turn; answers: ChatMessage[]; notes: ChatMessage[] }) {
  const open = isOpen(turn);
  return (
    <div class={`turn turn-${turn.state}`}>
      {answers.map((m) => (
        <MessageView key={m.id} message={m} />
      ))}
      {open && answers.length === 0 && (
        <p class="turn-waiting">
          <span class="spinner" aria-hidden="true" />
          {turn.state === 'queued' ? `Queued${turn.ahead !== undefined ? ` — ${turn.ahead} ahead` : ''}` : 'The agent is working…'}
        </p>
      )}
      {turn.steps > 0 && <Work turn={turn} />}
      {turn.notices.map((n) => (
        <div key={n.seq} class={`turn-notice notice-${n.kind}`} role="note" aria-label={n.kind === 'blocked' ? `Blocked request to ${n.host ?? 'a host'}` : 'Notice'}>
          <strong>{NOTICE_LABELS[n.kind] ?? 'Notice'}</strong> {n.text}
          {n.href && (
            <>
              {' '}
              <a href={n.href} target="_blank" rel="noopener noreferrer nofollow">
                Open
              </a>
            </>
          )}
        </div>
      ))}
      {turn.errors.map((text, i) => (
        <p key={i} class="turn-error" role="alert">
          <strong>Error</strong> {text}
        </p>
      ))}
      {notes.map((m) => (
        <MessageView key={m.id} message={m} />
      ))}
      <TurnFoot turn={turn} />
    </div>
  );
}

/** Progress (streamed output, tool use): open while the turn runs, folded once it is over. */
function Work({ turn }: { turn: Turn }) {
  const running = isOpen(turn);
  const [open, setOpen] = useState(running);
  useEffect(() => setOpen(running), [running]);
  const steps = `${turn.steps} ${turn.steps === 1 ? 'step' : 'steps'}`;
  return (
    <details class="work" open={open} onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>{running ? `Working… ${steps}` : `Worked: ${steps}`}</summary>
      <pre class="work-output" aria-label="The agent's output">
        {turn.progress}
      </pre>
    </details>
  );
}

function TurnFoot({ turn }: { turn: Turn }) {
  const parts: string[] = [];
  const ended = ENDED[turn.state];
  if (ended) parts.push(ended);
  const u = turn.usage;
  if (u) {
    const n = (k: string) => (typeof u[k] === 'number' ? (u[k] as number) : undefined);
    const tokens = [n('inputTokens') !== undefined ? `${n('inputTokens')!.toLocaleString()} in` : '', n('outputTokens') !== undefined ? `${n('outputTokens')!.toLocaleString()} out` : ''].filter(Boolean).join(' · ');
    if (tokens) parts.push(`${tokens} tokens`);
    if (n('costUsd') !== undefined) parts.push(`$${n('costUsd')!.toFixed(4)}`);
  }
  if (parts.length === 0) return null;
  return <p class={`turn-foot${ended ? ' turn-ended' : ''}`}>{parts.join(' · ')}</p>;
}

/** What each notice kind is called in the thread. */
const NOTICE_LABELS: Record<string, string> = { blocked: 'Blocked', budget: 'Budget spent', 'pull-request': 'Pull request', push: 'Pushed' };
