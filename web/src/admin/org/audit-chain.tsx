import { seg } from '../../api';
import { useGet } from '../../ui/hooks';
import { Empty, ErrorNote, Loading } from '../../ui/parts';
import type { AuditEvent } from './types';

const STEP: Record<string, string> = {
  invocation: 'Invocation: who asked',
  'access-denied': 'Access denied',
  session: 'Session',
  sandbox: 'Sandbox',
  egress: 'Egress request',
  'credential-use': 'Credential used',
  'schedule-run': 'Schedule fired',
  memory: 'Channel memory',
  'admin-change': 'Admin change',
};

/**
 * One thread's chain, oldest first: who asked, the session, its sandbox,
 * every request the agent made and every credential the proxy attached.
 */
export function AuditChain({ thread, nameOf, onClose }: { thread: string; nameOf: (id: string) => string; onClose: () => void }) {
  const chain = useGet<{ events: AuditEvent[] }>(`audit?thread=${seg(thread)}&limit=1000`);
  return (
    <section class="card chain" aria-labelledby="chain-title">
      <div class="row">
        <h2 id="chain-title">
          Thread <code>{thread}</code>
        </h2>
        <button type="button" class="btn btn-plain" onClick={onClose}>
          Close
        </button>
      </div>
      <ErrorNote error={chain.error} />
      {!chain.data ? (
        <Loading what="the thread's events" />
      ) : chain.data.events.length === 0 ? (
        <Empty>No events for this thread.</Empty>
      ) : (
        <ol class="chain-list" aria-label="The thread's chain, in order">
          {chain.data.events.map((e) => (
            <li key={e.seq} class={`chain-step chain-${e.type}`}>
              <span class="chain-type">{STEP[e.type] ?? e.type}</span>
              <span class={`outcome outcome-${e.outcome ?? 'none'}`}>{e.outcome ?? ''}</span>
              <span class="chain-what">{summary(e, nameOf)}</span>
              <time class="hint" dateTime={e.ts}>
                {new Date(e.ts).toLocaleTimeString()}
              </time>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** One line saying what an event was about, from its usual fields. */
export function summary(e: AuditEvent, nameOf: (id: string) => string): string {
  const parts: string[] = [];
  if (e.type === 'egress' || e.type === 'credential-use') {
    parts.push([e.method, e.host && `${e.host}${e.port && e.port !== 443 && e.port !== 80 ? `:${String(e.port)}` : ''}${e.path ?? ''}`].filter(Boolean).join(' '));
    if (e.connection) parts.push(`connection ${String(e.connection)}`);
    if (e.reason) parts.push(String(e.reason));
  } else {
    if (e.actor) parts.push(`by ${nameOf(e.actor)}`);
    for (const k of ['action', 'identity', 'trigger', 'engine', 'target', 'reason'] as const) if (e[k] !== undefined && e[k] !== null) parts.push(`${k} ${String(e[k])}`);
  }
  return parts.join(' · ');
}
