import { get, seg } from '../../api';
import type { Channel, Workspace } from './types';

/** Every channel of the org, each with its workspace's name (for pickers and labels). */
export async function allChannels(): Promise<Array<Channel & { workspaceName: string }>> {
  const workspaces = await get<Workspace[]>('workspaces');
  const lists = await Promise.all(workspaces.map(async (w) => (await get<Channel[]>(`workspaces/${seg(w.id)}/channels`)).map((c) => ({ ...c, workspaceName: w.name }))));
  return lists.flat();
}
