import { invalidInput } from '../../errors.js';
import type { ApiClient } from '../api-client.js';
import { forTerminal } from '../terminal-text.js';

/** Where `tagbox chat` talks: a channel of the caller's workspace, or the caller's DM with the agent. */
export type ChatPlace = { kind: 'channel'; id: string; name: string } | { kind: 'dm' };

interface ChannelInfo {
  id: string;
  name: string;
}

interface ThreadInfo {
  place: { kind: 'channel'; channel: string; name?: string } | { kind: 'dm' };
}

export const DEFAULT_CHANNEL = 'general';

/**
 * The place from the flags: `--dm`; `--channel` by id or name (`#` optional);
 * with `--thread` alone, wherever that thread is; else #general. A channel
 * that is not there is an input error listing the channels the caller may use.
 */
export async function resolvePlace(client: ApiClient, flags: { channel?: string; dm?: boolean; thread?: string }): Promise<ChatPlace> {
  if (flags.dm) return { kind: 'dm' };
  if (flags.channel === undefined && flags.thread !== undefined) {
    const thread = await client.call<ThreadInfo>('GET', `/api/v1/threads/${encodeURIComponent(flags.thread)}`);
    if (thread.place.kind === 'dm') return { kind: 'dm' };
    return { kind: 'channel', id: thread.place.channel, name: thread.place.name ?? thread.place.channel };
  }
  const wanted = (flags.channel ?? DEFAULT_CHANNEL).replace(/^#/, '');
  const channels = await client.call<ChannelInfo[]>('GET', '/api/v1/channels');
  const found =
    channels.find((c) => c.id === wanted) ?? channels.find((c) => c.name === wanted) ?? only(channels.filter((c) => c.name.toLowerCase() === wanted.toLowerCase()));
  if (found) return { kind: 'channel', id: found.id, name: found.name };
  const there = channels.length ? channels.map((c) => `#${c.name} (${c.id})`).join(', ') : 'none';
  const what = flags.channel === undefined ? `there is no channel "#${DEFAULT_CHANNEL}" (the default) here; pass --channel NAME` : `--channel: no channel "${wanted}" here`;
  throw invalidInput(forTerminal(`${what}. Channels you may use: ${there}`));
}

function only<T>(items: T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}

/** How the place reads in messages and the prompt. */
export function placeLabel(place: ChatPlace): string {
  return forTerminal(place.kind === 'dm' ? 'DM' : `#${place.name}`);
}
