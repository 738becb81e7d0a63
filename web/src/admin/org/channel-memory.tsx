import { useState } from 'preact/hooks';
import { del, get, seg } from '../../api';
import { useAction, useGet } from '../../ui/hooks';
import { Empty, ErrorNote, Loading, Time } from '../../ui/parts';
import { ConfirmButton } from '../../ui/confirm-button';
import type { Memory } from './types';

/** The channel's memory (the agent's ~/.tagbox/memory.md): its text, its versions, and clearing it. */
export function ChannelMemory({ channelId }: { channelId: string }) {
  const memory = useGet<Memory>(`channels/${seg(channelId)}/memory`);
  const [shown, setShown] = useState<{ version: number; content: string } | undefined>();
  const open = useAction(async (version: number) => {
    const v = await get<{ version: number; content: string }>(`channels/${seg(channelId)}/memory/versions/${version}`);
    setShown(v);
  });
  const clear = useAction(async () => {
    await del(`channels/${seg(channelId)}/memory`);
    setShown(undefined);
    memory.reload();
  });
  const m = memory.data;
  return (
    <section class="card" aria-labelledby="memory-title">
      <div class="row">
        <h2 id="memory-title">Channel memory</h2>
        {m && m.version !== null && <ConfirmButton label="Clear memory" confirmLabel="Yes, clear it" question="Delete every version of this channel's memory?" busy={clear.busy} onConfirm={() => clear.run()} />}
      </div>
      <p class="hint">What the agent keeps between sessions of this channel. Clearing deletes every version; the next turn starts empty.</p>
      <ErrorNote error={memory.error ?? clear.error ?? open.error} />
      {!m ? (
        <Loading what="memory" />
      ) : m.version === null ? (
        <Empty>The memory is empty.</Empty>
      ) : (
        <>
          <p>
            Version {m.version}, {m.bytes} bytes, {m.updatedAt && <Time iso={m.updatedAt} />}
          </p>
          <pre class="memory-text" aria-label="Current memory" tabIndex={0}>
            {m.content}
          </pre>
          <h3>Versions</h3>
          <ul class="plain-list">
            {m.history.map((h) => (
              <li key={h.version} class="row">
                <button type="button" class="btn btn-plain" onClick={() => void open.run(h.version)}>
                  Version {h.version}
                </button>
                <span class="hint">
                  {h.bytes} bytes · <Time iso={h.createdAt} />
                </span>
              </li>
            ))}
          </ul>
          {shown && (
            <pre class="memory-text" aria-label={`Memory version ${shown.version}`} tabIndex={0}>
              {shown.content}
            </pre>
          )}
        </>
      )}
    </section>
  );
}
