import { useEffect, useState } from 'preact/hooks';
import { del, get, post, seg } from '../../api';
import { useAction, useGet } from '../../ui/hooks';
import { Button, Empty, ErrorNote, Select } from '../../ui/parts';
import type { Channel, Member } from './types';

/** Who may use a private channel: add or remove members of its workspace. */
export function ChannelMembers({ channel }: { channel: Channel }) {
  const list = useGet<{ members: string[] }>(`channels/${seg(channel.id)}/members`);
  const [people, setPeople] = useState<Member[]>([]);
  const [pick, setPick] = useState('');
  useEffect(() => void get<Member[]>(`workspaces/${seg(channel.workspaceId)}/members`).then(setPeople, () => setPeople([])), [channel.workspaceId]);
  const name = (id: string) => people.find((p) => p.id === id)?.displayName ?? id;
  const add = useAction(async () => {
    await post(`channels/${seg(channel.id)}/members`, { memberId: pick });
    setPick('');
    list.reload();
  });
  const remove = useAction(async (memberId: string) => {
    await del(`channels/${seg(channel.id)}/members/${seg(memberId)}`);
    list.reload();
  });
  const inside = new Set(list.data?.members ?? []);
  const candidates = people.filter((p) => !inside.has(p.id));
  return (
    <section class="card" aria-labelledby="cm-title">
      <h2 id="cm-title">Members of this private channel</h2>
      <ErrorNote error={list.error ?? remove.error} />
      {list.data && list.data.members.length === 0 && <Empty>Nobody yet: only the members added here may use it.</Empty>}
      <ul class="plain-list">
        {(list.data?.members ?? []).map((id) => (
          <li key={id} class="row">
            <span>{name(id)}</span>
            <Button kind="danger" onClick={() => void remove.run(id)} aria-label={`Remove ${name(id)}`}>
              Remove
            </Button>
          </li>
        ))}
      </ul>
      <form
        class="row align-end"
        onSubmit={(e) => {
          e.preventDefault();
          if (pick) void add.run();
        }}
      >
        <Select label="Add a member" value={pick} onChange={setPick} options={[{ value: '', label: 'Choose…' }, ...candidates.map((p) => ({ value: p.id, label: p.displayName }))]} error={add.error?.message} />
        <Button type="submit" busy={add.busy} disabled={!pick}>
          Add
        </Button>
      </form>
    </section>
  );
}
