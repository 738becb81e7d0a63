import { createOrg } from '../../src/access/orgs-repo.js';
import type { World } from '../access/fixtures.js';

/** A second org in the same store, with a workspace and a channel: someone else's. */
export async function orgs(w: World, name: string): Promise<{ orgId: string; workspaceId: string; channelId: string }> {
  const org = await createOrg(w.store.db, name);
  const ws = await w.admin.createWorkspace('test', { orgId: org.id, kind: 'slack', externalId: `T-${name}`, name });
  const channel = await w.admin.createChannel('test', { workspaceId: ws.id, externalId: `C-${name}`, name: 'general' });
  return { orgId: org.id, workspaceId: ws.id, channelId: channel.id };
}
