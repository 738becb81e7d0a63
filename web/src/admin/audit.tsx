import { useEffect, useState } from 'preact/hooks';
import { post } from '../api';
import { useSearch } from '../router';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page, Select, TextInput } from '../ui/parts';
import { AuditChain, summary } from './org/audit-chain';
import { allChannels } from './places';
import { loadMembers } from './org/members-data';
import type { AuditEvent } from './org/types';
import { readQuery, writeQuery } from './org/url-query';
import './org/org.css';

const FILTERS = ['type', 'thread', 'member', 'host', 'outcome', 'since', 'until'] as const;
const TYPES = ['invocation', 'access-denied', 'session', 'sandbox', 'egress', 'credential-use', 'admin-change', 'schedule-run', 'memory'];
const OUTCOMES = ['credential', 'allowlist', 'blocked', 'accepted', 'ok', 'denied', 'error'];

/** The audit log: filters kept in the URL, a table of events, a thread's chain, and the hash chain's check. */
export function AuditPage(_props: { params: Record<string, string> }) {
  useTitle('Audit log');
  // The query is the page's state (Back and a shared link land on the same view).
  const search = useSearch();
  const applied = readQuery([...FILTERS, 'follow']);
  const apiQuery = new URLSearchParams();
  for (const k of FILTERS) {
    const v = applied[k];
    if (!v) continue;
    apiQuery.set(k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v);
  }
  apiQuery.set('limit', '500');
  const events = useGet<{ events: AuditEvent[] }>(`audit?${apiQuery.toString()}`);
  const [names, setNames] = useState(new Map<string, string>());
  const [channels, setChannels] = useState(new Map<string, string>());
  useEffect(() => {
    void loadMembers().then((r) => setNames(new Map(r.members.map((m) => [m.id, m.displayName]))), () => undefined);
    void allChannels().then((cs) => setChannels(new Map(cs.map((c) => [c.id, `#${c.name}`]))), () => undefined);
  }, []);
  const nameOf = (id: string) => names.get(id) ?? id;
  const follow = applied.follow;
  return (
    <Page title="Audit log" intro="Every decision and change, append-only and hash-chained." actions={<VerifyChain />}>
      <Filters key={search} applied={applied} />
      {follow && <AuditChain thread={follow} nameOf={nameOf} onClose={() => writeQuery({ ...applied, follow: undefined })} />}
      <ErrorNote error={events.error} />
      {!events.data ? (
        events.error ? null : <Loading what="events" />
      ) : events.data.events.length === 0 ? (
        <Empty>No events match.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="audit-table">
            <caption class="sr-only">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Where</th>
                <th scope="col">Outcome</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {[...events.data.events].reverse().map((e) => (
                <EventRow key={e.seq} event={e} nameOf={nameOf} channelOf={(id) => channels.get(id) ?? id} onFollow={(t) => writeQuery({ ...applied, follow: t })} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

function EventRow({ event: e, nameOf, channelOf, onFollow }: { event: AuditEvent; nameOf: (id: string) => string; channelOf: (id: string) => string; onFollow: (thread: string) => void }) {
  const { seq, hash, prevHash, ...rest } = e;
  void seq;
  void hash;
  void prevHash;
  return (
    <tr>
      <td>
        <time dateTime={e.ts} title={e.ts}>
          {new Date(e.ts).toLocaleString()}
        </time>
      </td>
      <td>{e.type}</td>
      <td>{e.actor ? nameOf(e.actor) : '—'}</td>
      <td>
        {e.channel && <div>{channelOf(e.channel)}</div>}
        {e.session && (
          <div>
            <span class="mono">thread {e.session}</span>{' '}
            <button type="button" class="btn btn-plain btn-small" onClick={() => onFollow(e.session!)}>
              Follow this thread
            </button>
          </div>
        )}
      </td>
      <td>
        <span class={`outcome outcome-${e.outcome ?? 'none'}`}>{e.outcome ?? '—'}</span>
      </td>
      <td class="detail-cell">
        <div>{summary(e, nameOf)}</div>
        <details>
          <summary>All fields</summary>
          <pre class="event-json">{JSON.stringify(rest, null, 2)}</pre>
        </details>
      </td>
    </tr>
  );
}

function Filters({ applied }: { applied: Record<string, string> }) {
  const [f, setF] = useState<Record<string, string>>(applied);
  const set = (k: string) => (v: string) => setF({ ...f, [k]: v });
  return (
    <form
      class="card filters"
      aria-label="Filter events"
      onSubmit={(e) => {
        e.preventDefault();
        writeQuery({ ...f, follow: applied.follow });
      }}
    >
      <div class="form-grid filters-grid">
        <Select label="Type" value={f.type ?? ''} onChange={set('type')} options={[{ value: '', label: 'Any' }, ...TYPES.map((t) => ({ value: t, label: t }))]} />
        <Select label="Outcome" value={f.outcome ?? ''} onChange={set('outcome')} options={[{ value: '', label: 'Any' }, ...OUTCOMES.map((t) => ({ value: t, label: t }))]} />
        <TextInput label="Thread" value={f.thread ?? ''} onInput={set('thread')} />
        <TextInput label="Member" value={f.member ?? ''} onInput={set('member')} hint="A member id" />
        <TextInput label="Host" value={f.host ?? ''} onInput={set('host')} placeholder="api.github.com" />
        <TextInput label="Since" type="datetime-local" value={f.since ?? ''} onInput={set('since')} />
        <TextInput label="Until" type="datetime-local" value={f.until ?? ''} onInput={set('until')} />
      </div>
      <div class="row">
        <Button kind="primary" type="submit">
          Apply filters
        </Button>
        <Button onClick={() => writeQuery({})}>Clear</Button>
      </div>
    </form>
  );
}

function VerifyChain() {
  const [result, setResult] = useState<{ ok: boolean; events: number; brokenAt?: { seq: number; type?: string; problem?: string }; message?: string } | undefined>();
  const verify = useAction(async () => setResult(await post('audit/verify')));
  return (
    <div class="verify">
      <Button busy={verify.busy} onClick={() => void verify.run()}>
        Verify chain
      </Button>
      <span role="status" class={result ? (result.ok ? 'verify-ok' : 'verify-bad') : undefined}>
        {result && (result.ok ? `Intact: ${result.events} events checked.` : `Broken at event ${result.brokenAt?.seq ?? '?'}${result.brokenAt?.type ? ` (${result.brokenAt.type})` : ''}: ${result.message ?? result.brokenAt?.problem ?? 'the chain does not hold'}`)}
      </span>
      {verify.error && <ErrorNote error={verify.error} />}
    </div>
  );
}
