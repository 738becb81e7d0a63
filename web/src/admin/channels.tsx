import { useEffect, useState } from 'preact/hooks';
import { get, patch, post, seg } from '../api';
import { Link, navigate } from '../router';
import { useAction, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page, Select, TextArea, TextInput } from '../ui/parts';
import { Checkbox } from './org/checkbox';
import { ChannelBudgets } from './org/channel-budgets';
import { ChannelMemory } from './org/channel-memory';
import { ChannelMembers } from './org/channel-members';
import type { Channel, Workspace } from './org/types';
import './org/org.css';

/** Every workspace's channels; new channels go in the web workspace (Slack's come from Slack). */
export function ChannelsPage(_props: { params: Record<string, string> }) {
  useTitle('Channels');
  const [data, setData] = useState<Array<{ workspace: Workspace; channels: Channel[] }> | undefined>();
  const load = useAction(async () => {
    const workspaces = await get<Workspace[]>('workspaces');
    setData(await Promise.all(workspaces.map(async (workspace) => ({ workspace, channels: await get<Channel[]>(`workspaces/${seg(workspace.id)}/channels`) }))));
  });
  useEffect(() => void load.run(), []);
  const web = data?.find((d) => d.workspace.kind === 'web')?.workspace;
  return (
    <Page title="Channels" intro="Where the agent works. Open a channel for its engine, instructions, members, memory and budgets.">
      {web && <NewChannel workspace={web} onCreated={(c) => navigate(`/admin/channels/${seg(c.id)}`)} />}
      <ErrorNote error={load.error} />
      {!data ? (
        <Loading what="channels" />
      ) : (
        data.map(({ workspace, channels }) => (
          <section key={workspace.id} aria-labelledby={`ws-${workspace.id}`}>
            <h2 id={`ws-${workspace.id}`}>
              {workspace.name} <span class="tag">{workspace.kind}</span>
            </h2>
            {channels.length === 0 ? (
              <Empty>No channels.</Empty>
            ) : (
              <ul class="channel-list">
                {channels.map((c) => (
                  <li key={c.id}>
                    <Link href={`/admin/channels/${seg(c.id)}`}>#{c.name}</Link>
                    {c.isPrivate && <span class="tag">private</span>}
                    {c.engine && <span class="tag">engine: {c.engine}</span>}
                  </li>
                ))}
              </ul>
            )}
          </section>
        ))
      )}
    </Page>
  );
}

function NewChannel({ workspace, onCreated }: { workspace: Workspace; onCreated: (c: Channel) => void }) {
  const [name, setName] = useState('');
  const [isPrivate, setPrivate] = useState(false);
  const create = useAction(async () => {
    const slug = name.trim().toLowerCase().replace(/^#/, '');
    const channel = await post<Channel>(`workspaces/${seg(workspace.id)}/channels`, { externalId: slug, name: slug, isPrivate });
    onCreated(channel);
  });
  const err = create.error;
  return (
    <form
      class="card"
      aria-labelledby="new-channel-title"
      onSubmit={(e) => {
        e.preventDefault();
        void create.run();
      }}
    >
      <h2 id="new-channel-title">New channel in {workspace.name}</h2>
      <TextInput label="Channel name" value={name} onInput={setName} placeholder="eng" required error={err?.field === 'name' || err?.field === 'externalId' ? err.message : undefined} />
      <Checkbox label="Private" checked={isPrivate} onChange={setPrivate} hint="Only the members you add may use a private channel." />
      {err && err.field !== 'name' && err.field !== 'externalId' && <ErrorNote error={err} />}
      <Button kind="primary" type="submit" busy={create.busy} disabled={!name.trim()}>
        Create channel
      </Button>
    </form>
  );
}

/** One channel: its agent settings, members (when private), memory and budgets. */
export function ChannelSettingsPage({ params }: { params: Record<string, string> }) {
  const id = params.id!;
  const [channel, setChannel] = useState<Channel | undefined>();
  const load = useAction(async () => {
    // There is no GET of one channel for admins: find it in its workspace.
    for (const w of await get<Workspace[]>('workspaces')) {
      const found = (await get<Channel[]>(`workspaces/${seg(w.id)}/channels`)).find((c) => c.id === id);
      if (found) return setChannel(found);
    }
    throw new Error(`channel "${id}" not found`);
  });
  useEffect(() => void load.run(), [id]);
  useTitle(channel ? `#${channel.name}` : 'Channel');
  if (!channel) return <Page title="Channel">{load.error ? <ErrorNote error={load.error} /> : <Loading what="the channel" />}</Page>;
  return (
    <Page title={`#${channel.name}`} intro={<Link href="/admin/channels">All channels</Link>}>
      <AgentSettings channel={channel} onSaved={setChannel} />
      {channel.isPrivate && <ChannelMembers channel={channel} />}
      <ChannelMemory channelId={channel.id} />
      <ChannelBudgets channelId={channel.id} />
    </Page>
  );
}

const ENGINES = [
  { value: '', label: 'The server default (agent.engine)' },
  { value: 'shell', label: 'shell: each message is a shell command' },
  { value: 'claude', label: 'claude: the Claude agent' },
];

function AgentSettings({ channel, onSaved }: { channel: Channel; onSaved: (c: Channel) => void }) {
  const [engine, setEngine] = useState(channel.engine ?? '');
  const [instructions, setInstructions] = useState(channel.instructions ?? '');
  const [saved, setSaved] = useState(false);
  const save = useAction(async () => {
    const updated = await patch<Channel>(`channels/${seg(channel.id)}`, { engine: engine || null, instructions: instructions || null });
    onSaved(updated);
    setSaved(true);
  });
  const err = save.error;
  return (
    <form
      class="card"
      aria-labelledby="agent-title"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <h2 id="agent-title">Agent</h2>
      <Select label="Engine" value={engine} onChange={(v) => (setEngine(v), setSaved(false))} options={ENGINES} hint="What runs a turn in this channel's sandboxes." error={err?.field === 'engine' ? err.message : undefined} />
      <TextArea
        label="Channel instructions"
        rows={5}
        value={instructions}
        onInput={(v) => (setInstructions(v), setSaved(false))}
        hint="Added to the agent's system prompt after the org's instructions."
        error={err?.field === 'instructions' ? err.message : undefined}
      />
      {err && !err.field && <ErrorNote error={err} />}
      <div class="row">
        <Button kind="primary" type="submit" busy={save.busy}>
          Save agent settings
        </Button>
        <span role="status" class="hint">
          {saved ? 'Saved.' : ''}
        </span>
      </div>
    </form>
  );
}
