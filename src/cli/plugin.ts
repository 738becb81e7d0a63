import type { Command } from 'commander';
import { AccessAdmin } from '../access/admin-service.js';
import { notFound } from '../access/errors.js';
import type { Org } from '../access/model.js';
import { scopeKey } from '../access/model.js';
import { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import { PluginAdmin, type PluginSummary } from '../plugins/plugin-admin.js';
import type { PluginCounts } from '../plugins/plugin-layout.js';
import { pluginNameProblem } from '../plugins/plugin-tree.js';
import { readPluginDir } from '../plugins/read-plugin-dir.js';
import { resolveScope, withScopeFlags, type ScopeOptions } from './scope-flags.js';
import { contextFrom, withStore } from './context.js';
import { osUser } from './os-user.js';

/**
 * tagbox plugin add | list | rm | attach | detach: Claude Code plugins, stored
 * content-addressed and attached to scopes like bundles (docs/PLUGINS.md).
 * It works on the store directly, as `tagbox bundle` does; every change goes
 * through PluginAdmin (validated, audited); the actor is `cli:$USER`.
 */
export function registerPlugin(program: Command): void {
  const plugin = program.command('plugin').description('Claude Code plugins: add a plugin directory, list, remove, attach to and detach from scopes');

  plugin
    .command('add')
    .description('validate DIR as a Claude Code plugin and store it as NAME (replacing the plugin of that name)')
    .argument('<dir>', 'plugin directory (with .claude-plugin/plugin.json)')
    .requiredOption('--name <name>', 'the plugin\'s name in Tagbox (its sandbox path is /opt/tagbox/plugins/NAME)')
    .action(async (dir: string, opts: { name: string }, command: Command) => {
      const problem = pluginNameProblem(opts.name);
      if (problem) throw invalidInput(`--name ${problem}`);
      const files = await readPluginDir(dir);
      const root = dir.replace(/\/+$/, '');
      await withAdmins(command, async ({ plugins }, org) => {
        const { outcome, plugin: added } = await plugins.add(actor(), org.id, opts.name, files, { label: (p) => `${root}/${p}`, root });
        if (outcome === 'unchanged') {
          process.stdout.write('no changes\n');
          return;
        }
        process.stdout.write(`${outcome === 'add' ? 'added' : 'replaced'} plugin ${added.name} (${shortDigest(added.digest)}, ${describeCounts(added.manifest.counts)})\n`);
      });
    });

  plugin
    .command('list')
    .alias('ls')
    .description('list plugins: name, digest, components and where they are attached')
    .action(async (_opts, command: Command) => {
      await withAdmins(command, async ({ plugins }, org) => {
        for (const p of await plugins.list(org.id)) process.stdout.write(`${listLine(p)}\n`);
      });
    });

  plugin
    .command('rm')
    .alias('remove')
    .description('remove a plugin (and detach it everywhere)')
    .argument('<name>', 'plugin name')
    .action(async (name: string, _opts, command: Command) => {
      await withAdmins(command, async ({ plugins }, org) => {
        if (!(await plugins.remove(actor(), org.id, name))) throw notFound(`plugin "${name}"`);
        process.stdout.write(`removed plugin ${name}\n`);
      });
    });

  for (const verb of ['attach', 'detach'] as const) {
    withScopeFlags(
      plugin
        .command(verb)
        .description(`${verb} a plugin ${verb === 'attach' ? 'to' : 'from'} the org, a workspace or a channel`)
        .argument('<name>', 'plugin name'),
    ).action(async (name: string, opts: ScopeOptions, command: Command) => {
      await withAdmins(command, async ({ access, plugins }, org) => {
        const { scope, label } = await resolveScope(access, org, opts);
        if (verb === 'attach') {
          const added = await plugins.attach(actor(), org.id, name, scope);
          process.stdout.write(added ? `attached plugin ${name} to ${label}\n` : `no changes: plugin ${name} is already attached to ${label}\n`);
        } else {
          const removed = await plugins.detach(actor(), org.id, name, scope);
          process.stdout.write(removed ? `detached plugin ${name} from ${label}\n` : `no changes: plugin ${name} is not attached to ${label}\n`);
        }
      });
    });
  }
}

export function shortDigest(digest: string): string {
  return `sha256:${digest.slice(0, 12)}…`;
}

/** `2 skills, 1 command` — only what the plugin has. */
export function describeCounts(counts: PluginCounts): string {
  const parts: Array<[number, string, string]> = [
    [counts.skills, 'skill', 'skills'],
    [counts.commands, 'command', 'commands'],
    [counts.agents, 'agent', 'agents'],
    [counts.hooks, 'hook event', 'hook events'],
    [counts.mcpServers, 'MCP server', 'MCP servers'],
  ];
  return parts.filter(([n]) => n > 0).map(([n, one, many]) => `${n} ${n === 1 ? one : many}`).join(', ');
}

function listLine(p: PluginSummary): string {
  const where = p.attachments.map(scopeKey).join(' ') || '(not attached)';
  return `${p.name}\t${shortDigest(p.digest)}\t${describeCounts(p.manifest.counts)}\t${where}`;
}


async function withAdmins(command: Command, fn: (admins: { access: AccessAdmin; plugins: PluginAdmin }, org: Org) => Promise<void>): Promise<void> {
  const ctx = contextFrom(command);
  await withStore(ctx, async (store) => {
    const audit = new AuditLog(store);
    const access = new AccessAdmin(store, audit);
    await fn({ access, plugins: new PluginAdmin(store, audit) }, await access.ensureDefaultOrg());
  });
}

function actor(): string {
  return `cli:${osUser()}`;
}
