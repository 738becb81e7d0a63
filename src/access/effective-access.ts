import type { Kysely } from 'kysely';
import { MODEL_HOST } from '../engines/model-connection.js';
import type { Connection as PolicyConnection, HostEntry } from '../policy/bundle-schema.js';
import { attachmentsByPlugin, pluginsAttachedTo } from '../plugins/plugins-repo.js';
import { placeScopes } from '../plugins/session-plugins.js';
import type { Database } from '../store/tables.js';
import { attributedScopeBundles, type SessionPolicyOptions } from './effective-policy.js';
import { notFound } from './errors.js';
import { scopeKey, type Channel, type Scope } from './model.js';
import { getChannel, getWorkspace } from './workspaces-repo.js';

/** What a channel's sessions may reach, and where each part comes from (GET /channels/{id}/access). */
export interface ChannelAccess {
  channel: { id: string; name: string };
  bundles: Array<{ name: string; from: string; fromLabel: string; scopes: string[]; domains: Array<string | HostEntry>; connections: ConnectionView[] }>;
  model: { host: string; secret: string } | null;
  plugins: Array<{ name: string; from: string; fromLabel: string }>;
}

interface ConnectionView {
  name: string;
  secret: string;
  allowedWebsites: Array<string | HostEntry>;
  inject: string;
  narrow?: PolicyConnection['narrow'];
  github?: PolicyConnection['github'];
}

/**
 * Invariant 5, explained: the very union the proxy compiles (effective-policy.ts
 * attributedScopeBundles, not a second implementation), with each bundle's
 * scope. A bundle attached at several of the channel's scopes is listed once,
 * `from` its widest (org, then workspace, then channel); `scopes` names all.
 * Secrets appear by vault name only.
 */
export async function channelAccess(db: Kysely<Database>, channelId: string, options: SessionPolicyOptions = {}): Promise<ChannelAccess> {
  const channel = await getChannel(db, channelId);
  if (!channel) throw notFound(`channel ${channelId}`);
  const workspace = (await getWorkspace(db, channel.workspaceId))!;
  const labelOf = (scope: Scope) => (scope.kind === 'org' ? 'the org' : scope.kind === 'workspace' ? `workspace ${workspace.name}` : `#${channel.name}`);
  const bundles = (await attributedScopeBundles(db, workspace.orgId, workspace.id, channel.id)).map(({ bundle, scopes }) => ({
    name: bundle.name,
    from: scopeKey(scopes[0]!),
    fromLabel: labelOf(scopes[0]!),
    scopes: scopes.map(scopeKey),
    domains: bundle.domains.map(hostView),
    connections: bundle.connections.map(connectionView),
  }));
  return {
    channel: { id: channel.id, name: channel.name },
    bundles,
    model: options.modelSecret ? { host: MODEL_HOST, secret: options.modelSecret } : null,
    plugins: await channelPlugins(db, channel, labelOf),
  };
}

/** The plugins the channel's sessions mount (session-plugins.ts's scopes), with where each is attached. */
async function channelPlugins(db: Kysely<Database>, channel: Channel, labelOf: (scope: Scope) => string): Promise<ChannelAccess['plugins']> {
  const { orgId, scopes } = await placeScopes(db, { kind: 'channel', channelId: channel.id });
  const plugins = await pluginsAttachedTo(db, orgId, scopes);
  if (plugins.length === 0) return [];
  const attachments = await attachmentsByPlugin(db, orgId);
  const mine = new Set([scopeKey({ kind: 'org' }), `workspace:${channel.workspaceId}`, `channel:${channel.id}`]);
  return plugins.map((p) => {
    // attachmentsByPlugin orders the org first, then workspaces, then channels: the first of this channel's is the widest.
    const from = (attachments.get(p.id) ?? []).find((s) => mine.has(scopeKey(s)))!;
    return { name: p.name, from: scopeKey(from), fromLabel: labelOf(from) };
  });
}

function hostView(entry: HostEntry): string | HostEntry {
  return entry.ports ? { host: entry.host, ports: entry.ports } : entry.host;
}

function connectionView(c: PolicyConnection): ConnectionView {
  const inject = c.github ? 'github-app' : 'header' in c.inject ? `header:${c.inject.header}` : 'basic';
  return {
    name: c.name,
    secret: c.secret,
    allowedWebsites: c.allowedWebsites.map(hostView),
    inject,
    ...(c.narrow && Object.keys(c.narrow).length ? { narrow: c.narrow } : {}),
    ...(c.github ? { github: c.github } : {}),
  };
}
