import type { Kysely } from 'kysely';
import { notFound } from '../access/errors.js';
import type { Place } from '../access/effective-policy.js';
import { getMember } from '../access/members-repo.js';
import { getChannel, getWorkspace } from '../access/workspaces-repo.js';
import { failure } from '../errors.js';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { ensureExtracted } from './plugin-cache.js';
import { pluginNameProblem } from './plugin-tree.js';
import { pluginsAttachedTo, storedFiles, type StoredScope } from './plugins-repo.js';

/** One plugin of a session: mount `hostDir` read-only at `/opt/tagbox/plugins/<name>`. */
export interface SessionPlugin {
  name: string;
  digest: string;
  hostDir: string;
}

/**
 * The plugins that apply to a place: channel -> attached to the org, its
 * workspace or the channel; DM -> the org and the member's workspace. Each is
 * extracted (once, atomically: temp dir + rename) under cacheDir/<digest>,
 * directories 0755, files 0644/0755, so that a sandbox of another uid can read
 * them. The rows are treated as hostile: a bad name, digest or blob fails the
 * call with an error naming the plugin, and nothing is written outside cacheDir.
 */
export async function pluginsForPlace(store: ControlStore, place: Place, cacheDir: string): Promise<SessionPlugin[]> {
  const { orgId, scopes } = await placeScopes(store.db, place);
  const out: SessionPlugin[] = [];
  for (const plugin of await pluginsAttachedTo(store.db, orgId, scopes)) {
    const problem = pluginNameProblem(plugin.name);
    if (problem) throw failure(`plugin ${JSON.stringify(plugin.name.slice(0, 80))}: stored name refused: ${problem}`, 'plugin_blob_invalid');
    const where = `plugin "${plugin.name}"`;
    const hostDir = await ensureExtracted(cacheDir, plugin.digest, () => storedFiles(store.db, plugin), where);
    out.push({ name: plugin.name, digest: plugin.digest, hostDir });
  }
  return out;
}

/** A place's org and the scopes whose plugins it gets (a DM has no channel). */
export async function placeScopes(db: Kysely<Database>, place: Place): Promise<{ orgId: string; scopes: StoredScope[] }> {
  let workspaceId: string;
  let channelId: string | undefined;
  if (place.kind === 'dm') {
    const member = await getMember(db, place.memberId);
    if (!member) throw notFound(`member ${place.memberId}`);
    workspaceId = member.workspaceId;
  } else {
    const channel = await getChannel(db, place.channelId);
    if (!channel) throw notFound(`channel ${place.channelId}`);
    workspaceId = channel.workspaceId;
    channelId = channel.id;
  }
  const workspace = await getWorkspace(db, workspaceId);
  if (!workspace) throw notFound(`workspace ${workspaceId}`);
  return {
    orgId: workspace.orgId,
    scopes: [
      { kind: 'org', id: workspace.orgId },
      { kind: 'workspace', id: workspace.id },
      ...(channelId ? [{ kind: 'channel' as const, id: channelId }] : []),
    ],
  };
}
