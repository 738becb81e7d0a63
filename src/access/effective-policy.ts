import type { Kysely } from 'kysely';
import { notFound } from './errors.js';
import { compileCidrs } from '../policy/cidr.js';
import { compilePolicy, type EgressPolicy } from '../policy/compile.js';
import { personalHostProblem, type Bundle as PolicyBundle } from '../policy/bundle-schema.js';
import type { Database } from '../store/tables.js';
import { bundlesAttachedTo, personalConnectors, scopeKeysOf } from './bundles-repo.js';
import { getMember } from './members-repo.js';
import { scopeKey, type Connection, type Scope } from './model.js';
import { isPersonalSecretName, personalSecretName } from './personal-secrets.js';
import { getChannel, getWorkspace } from './workspaces-repo.js';
import { toPolicyBundle } from './spec.js';
import { modelBundle } from '../engines/model-connection.js';

/** Where the agent works: a channel (acts as the agent) or a member's DM (acts as that member). */
export type Place = { kind: 'channel'; channelId: string } | { kind: 'dm'; memberId: string };

/** The name of the one bundle a DM gets: the member's personal connectors. */
export const PERSONAL_BUNDLE = 'personal';

/**
 * Invariant 5, in one place. A channel gets the union of the bundles attached
 * to it, its workspace and the org — whoever asked. A DM gets that member's
 * personal connectors and nothing else (no org, workspace or channel bundle).
 *
 * The proxy computes its policy here, from the database, so this is also the
 * last line of defence against rows that no entry point would have accepted
 * (written before a check existed, or straight into the database). It fails
 * closed by dropping the connection: a channel never sends a personal secret,
 * and a DM sends only the member's own secret, to hosts a member may name.
 */
export async function effectiveBundles(db: Kysely<Database>, place: Place): Promise<PolicyBundle[]> {
  if (place.kind === 'dm') {
    const member = await getMember(db, place.memberId);
    if (!member) throw notFound(`member ${place.memberId}`);
    const connections = (await personalConnectors(db, member.id)).filter((c) => usableInDm(member.id, c));
    return connections.length ? [toPolicyBundle({ name: PERSONAL_BUNDLE, domains: [], connections })] : [];
  }
  const channel = await getChannel(db, place.channelId);
  if (!channel) throw notFound(`channel ${place.channelId}`);
  const workspace = (await getWorkspace(db, channel.workspaceId))!;
  return scopeBundles(db, workspace.orgId, workspace.id, channel.id);
}

/** The union for a workspace (and optionally one of its channels); also used to vet changes before they commit. */
export async function scopeBundles(db: Kysely<Database>, orgId: string, workspaceId?: string, channelId?: string): Promise<PolicyBundle[]> {
  return (await attributedScopeBundles(db, orgId, workspaceId, channelId)).map((a) => a.bundle);
}

/** One bundle of the union, with the scopes (of those asked about) it is attached to: org, then workspace, then channel. */
export interface AttributedBundle {
  bundle: PolicyBundle;
  scopes: Scope[];
}

/** The union itself, saying where each part comes from (the admin console's effective access shows it). */
export async function attributedScopeBundles(db: Kysely<Database>, orgId: string, workspaceId?: string, channelId?: string): Promise<AttributedBundle[]> {
  const scopes: Scope[] = [
    { kind: 'org' as const },
    ...(workspaceId ? [{ kind: 'workspace' as const, id: workspaceId }] : []),
    ...(channelId ? [{ kind: 'channel' as const, id: channelId }] : []),
  ];
  const bundles = await bundlesAttachedTo(db, orgId, scopes);
  const attached = await scopeKeysOf(db, bundles.map((b) => b.id));
  return bundles.map((b) => ({
    bundle: toPolicyBundle({ ...b, connections: b.connections.filter((c) => !isPersonalSecretName(c.secret)) }),
    scopes: scopes.filter((s) => attached.get(b.id)?.includes(scopeKey(s))),
  }));
}

/**
 * The proxy's EgressPolicy for a place. A DM's policy unlocks no forbidden
 * address whatever is stored: its list of IP and CIDR entries the SSRF guard
 * may dial despite their class is empty (a public IP literal stays reachable;
 * the proxy's own addresses, loopback, private and metadata addresses do not).
 */
export async function effectivePolicy(db: Kysely<Database>, place: Place, options: SessionPolicyOptions = {}): Promise<EgressPolicy> {
  // The model connection is every session's, channel and DM alike: the engine cannot work without it.
  const model = options.modelSecret ? [modelBundle(options.modelSecret)] : [];
  const policy = compilePolicy([...(await effectiveBundles(db, place)), ...model]);
  return place.kind === 'dm' ? { ...policy, addresses: NO_ADDRESSES } : policy;
}

const NO_ADDRESSES = compileCidrs([]);

export interface SessionPolicyOptions {
  /** agent.modelSecret: the vault name of the org's model key (the model connection is added when set). */
  modelSecret?: string;
}

/** A stored personal connector the DM may use: its own derived secret, and no host a member may not name. */
function usableInDm(memberId: string, c: Connection): boolean {
  if (c.secret !== personalSecretName(memberId, c.name)) return false;
  const hosts = [...c.allowedWebsites.map((w) => (typeof w === 'string' ? w : w.host)), ...(c.narrow?.host ? [c.narrow.host] : [])];
  return hosts.every((h) => personalHostProblem(h) === undefined);
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
