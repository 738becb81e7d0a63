import { get, seg } from '../api';

/** The org's workspaces and channels as the console reads them (both the access and the organisation pages). */
export interface Workspace {
  id: string;
  kind: 'web' | 'slack';
  name: string;
  externalId: string;
}

export interface Channel {
  id: string;
  workspaceId: string;
  externalId: string;
  name: string;
  isPrivate: boolean;
  engine?: string | null;
  instructions?: string | null;
}

/** Every workspace with its channels. */
export async function workspacesWithChannels(): Promise<Array<Workspace & { channels: Channel[] }>> {
  const workspaces = await get<Workspace[]>('workspaces');
  return Promise.all(workspaces.map(async (w) => ({ ...w, channels: await get<Channel[]>(`workspaces/${seg(w.id)}/channels`) })));
}

/** Every channel of the org, each with its workspace's name (for pickers and labels). */
export async function allChannels(): Promise<Array<Channel & { workspaceName: string }>> {
  return (await workspacesWithChannels()).flatMap((w) => w.channels.map((c) => ({ ...c, workspaceName: w.name })));
}
