import { useEffect, useState } from 'preact/hooks';
import { del, post, seg } from '../api';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page, Select, TextArea, TextInput } from '../ui/parts';
import { allChannels } from './places';
import { ConfirmButton } from '../ui/confirm-button';
import { loadMembers } from './org/members-data';
import { useCronPreview } from './org/use-cron-preview';
import type { Channel, Schedule } from './org/types';
import './org/org.css';

type Named = Channel & { workspaceName: string };

/** Every schedule of the org; create one with its next firings shown as you type; delete. */
export function SchedulesPage(_props: { params: Record<string, string> }) {
  useTitle('Schedules');
  const list = useGet<Schedule[]>('schedules');
  const [channels, setChannels] = useState<Named[]>([]);
  const [names, setNames] = useState(new Map<string, string>());
  useEffect(() => {
    void allChannels().then(setChannels, () => setChannels([]));
    void loadMembers().then((r) => setNames(new Map(r.members.map((m) => [m.id, m.displayName]))), () => undefined);
  }, []);
  const channelName = (id: string) => {
    const c = channels.find((x) => x.id === id);
    return c ? `#${c.name}` : id;
  };
  const remove = useAction(async (id: string) => {
    await del(`schedules/${seg(id)}`);
    list.reload();
  });
  return (
    <Page title="Schedules" intro="Prompts posted into a channel on a cron schedule; each firing starts a new thread as its creator.">
      <NewSchedule channels={channels} onCreated={list.reload} />
      <h2>All schedules</h2>
      <ErrorNote error={list.error ?? remove.error} />
      {!list.data ? (
        <Loading what="schedules" />
      ) : list.data.length === 0 ? (
        <Empty>No schedules yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Cron</th>
                <th scope="col">Time zone</th>
                <th scope="col">Prompt</th>
                <th scope="col">Next firing</th>
                <th scope="col">Creator</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((s) => (
                <tr key={s.id}>
                  <td>{channelName(s.channel)}</td>
                  <td>
                    <code>{s.cron}</code>
                  </td>
                  <td>{s.timezone}</td>
                  <td class="prompt-cell">{s.prompt}</td>
                  <td>{s.nextRun ? <time dateTime={s.nextRun}>{new Date(s.nextRun).toLocaleString()}</time> : 'never'}</td>
                  <td>{names.get(s.createdBy) ?? s.createdBy}</td>
                  <td>
                    <ConfirmButton label="Delete" confirmLabel="Yes, delete" question={`Delete the schedule "${s.cron}" in ${channelName(s.channel)}?`} onConfirm={() => remove.run(s.id)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

function NewSchedule({ channels, onCreated }: { channels: Named[]; onCreated: () => void }) {
  const [channel, setChannel] = useState('');
  const [cron, setCron] = useState('');
  const [timezone, setTimezone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
  const [prompt, setPrompt] = useState('');
  const preview = useCronPreview(cron, timezone);
  const create = useAction(async () => {
    await post(`channels/${seg(channel)}/schedules`, { cron, timezone, prompt });
    setCron('');
    setPrompt('');
    onCreated();
  });
  useEffect(() => {
    if (!channel && channels[0]) setChannel(channels[0].id);
  }, [channels]);
  const err = create.error;
  // The preview's reason names query.cron / query.timezone; creating names body.cron, body.timezone.
  const cronError = preview.error?.field === 'cron' ? preview.error.message : err?.field === 'cron' ? err.message : preview.error && preview.error.field !== 'timezone' ? preview.error.message : undefined;
  const tzError = preview.error?.field === 'timezone' ? preview.error.message : err?.field === 'timezone' ? err.message : undefined;
  return (
    <form
      class="card"
      aria-labelledby="new-schedule-title"
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <h2 id="new-schedule-title">New schedule</h2>
      <div class="form-grid">
        <Select label="Channel" value={channel} onChange={setChannel} options={channels.map((c) => ({ value: c.id, label: `#${c.name} (${c.workspaceName})` }))} error={err?.field === 'channel' ? err.message : undefined} />
        <TextInput label="Cron" value={cron} onInput={setCron} placeholder="0 9 * * 1-5" hint="minute hour day-of-month month day-of-week" error={cronError} />
        <TextInput label="Time zone" value={timezone} onInput={setTimezone} hint="An IANA time zone, such as Europe/Paris." error={tzError} />
      </div>
      <div class="cron-preview" aria-live="polite">
        {preview.next.length > 0 && (
          <>
            <h3 id="next-title">Next {preview.next.length} firings</h3>
            <ol aria-labelledby="next-title" class="next-list">
              {preview.next.map((t) => (
                <li key={t}>
                  <time dateTime={t}>{new Date(t).toLocaleString(undefined, { timeZone: safeZone(timezone), weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })}</time>
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
      <TextArea label="Prompt" rows={3} value={prompt} onInput={setPrompt} hint="Posted in the channel as if you had typed it." error={err?.field === 'prompt' ? err.message : undefined} />
      {err && !['cron', 'timezone', 'prompt', 'channel'].includes(err.field ?? '') && <ErrorNote error={err} />}
      <Button kind="primary" type="submit" busy={create.busy} disabled={!channel || !cron.trim() || !prompt.trim()}>
        Create schedule
      </Button>
    </form>
  );
}

/** The typed zone if the browser knows it (times shown there), else the browser's own. */
function safeZone(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return zone;
  } catch {
    return undefined;
  }
}
