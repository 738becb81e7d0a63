import type { Command } from 'commander';
import type { AccessAdmin } from '../access/admin-service.js';
import type { Org, Scope } from '../access/model.js';
import { invalidInput } from '../errors.js';

/**
 * --org | --workspace W | --channel C, as `tagbox bundle` and `tagbox plugin`
 * read them: ids or names (a channel's may start with #), one scope exactly.
 */
export interface ScopeOptions {
  org?: boolean;
  workspace?: string;
  channel?: string;
}

export async function resolveScope(admin: AccessAdmin, org: Org, opts: ScopeOptions): Promise<{ scope: Scope; label: string }> {
  const given = [opts.org, opts.workspace !== undefined && opts.channel === undefined, opts.channel !== undefined].filter(Boolean).length;
  if (given !== 1) throw invalidInput('give exactly one of --org, --workspace W or --channel C (--workspace may narrow where --channel looks)');
  if (opts.org) return { scope: { kind: 'org' }, label: 'the org' };
  const workspaces = await admin.listWorkspaces(org.id);
  const pick = <T extends { id: string; name: string }>(items: T[], key: string, what: string): T => {
    const byId = items.find((i) => i.id === key);
    if (byId) return byId;
    const named = items.filter((i) => i.name === key);
    if (named.length === 1) return named[0]!;
    if (named.length > 1) throw invalidInput(`--${what} "${key}": ${named.length} ${what}s have that name; give the id (${named.map((n) => n.id).join(', ')})`);
    throw invalidInput(`--${what} "${key}": no such ${what} (give an id or a name)`);
  };
  const ws = opts.workspace === undefined ? undefined : pick(workspaces, opts.workspace, 'workspace');
  if (opts.channel === undefined) return { scope: { kind: 'workspace', id: ws!.id }, label: `workspace ${ws!.name}` };
  const channels = (await Promise.all((ws ? [ws] : workspaces).map((w) => admin.listChannels(w.id)))).flat();
  const channel = pick(channels, opts.channel.replace(/^#/, ''), 'channel');
  return { scope: { kind: 'channel', id: channel.id }, label: `channel ${channel.name}` };
}

/** Adds --org, --workspace and --channel to a verb (read them with resolveScope). */
export function withScopeFlags(command: Command): Command {
  return command
    .option('--org', 'the whole org')
    .option('--workspace <workspace>', 'a workspace, by id or name (with --channel: where to look the channel up)')
    .option('--channel <channel>', 'a channel, by id or name (#name works too)');
}
