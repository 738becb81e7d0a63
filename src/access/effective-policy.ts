import type { Kysely } from 'kysely';
import { notFound } from './errors.js';
import { compilePolicy, type EgressPolicy } from '../policy/compile.js';
import type { Bundle as PolicyBundle } from '../policy/bundle-schema.js';
import type { Database } from '../store/tables.js';
import { bundlesAttachedTo, personalConnectors } from './bundles-repo.js';
import { getMember } from './members-repo.js';
import { getChannel, getWorkspace } from './workspaces-repo.js';
import { toPolicyBundle } from './spec.js';

/** Where the agent works: a channel (acts as the agent) or a member's DM (acts as that member). */
export type Place = { kind: 'channel'; channelId: string } | { kind: 'dm'; memberId: string };

/** The name of the one bundle a DM gets: the member's personal connectors. */
export const PERSONAL_BUNDLE = 'personal';

/**
 * Invariant 5, in one place. A channel gets the union of the bundles attached
 * to it, its workspace and the org — whoever asked. A DM gets that member's
 * personal connectors and nothing else (no org, workspace or channel bundle).
 */
export async function effectiveBundles(db: Kysely<Database>, place: Place): Promise<PolicyBundle[]> {
  if (place.kind === 'dm') {
    const member = await getMember(db, place.memberId);
    if (!member) throw notFound(`member ${place.memberId}`);
    const connections = await personalConnectors(db, member.id);
    return connections.length ? [toPolicyBundle({ name: PERSONAL_BUNDLE, domains: [], connections })] : [];
  }
  const channel = await getChannel(db, place.channelId);
  if (!channel) throw notFound(`channel ${place.channelId}`);
  const workspace = (await getWorkspace(db, channel.workspaceId))!;
  return scopeBundles(db, workspace.orgId, workspace.id, channel.id);
}

/** The union for a workspace (and optionally one of its channels); also used to vet changes before they commit. */
export async function scopeBundles(db: Kysely<Database>, orgId: string, workspaceId?: string, channelId?: string): Promise<PolicyBundle[]> {
  const scopes = [
    { kind: 'org' as const },
    ...(workspaceId ? [{ kind: 'workspace' as const, id: workspaceId }] : []),
    ...(channelId ? [{ kind: 'channel' as const, id: channelId }] : []),
  ];
  return (await bundlesAttachedTo(db, orgId, scopes)).map(toPolicyBundle);
}

/** The proxy's EgressPolicy for a place. */
export async function effectivePolicy(db: Kysely<Database>, place: Place): Promise<EgressPolicy> {
  return compilePolicy(await effectiveBundles(db, place));
}

/** The org a place belongs to (whose revision to watch). */
export async function orgOfPlace(db: Kysely<Database>, place: Place): Promise<string> {
  if (place.kind === 'dm') {
    const member = await getMember(db, place.memberId);
    if (!member) throw notFound(`member ${place.memberId}`);
    return (await getWorkspace(db, member.workspaceId))!.orgId;
  }
  const channel = await getChannel(db, place.channelId);
  if (!channel) throw notFound(`channel ${place.channelId}`);
  return (await getWorkspace(db, channel.workspaceId))!.orgId;
}
