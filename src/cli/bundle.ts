import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { AccessAdmin } from '../access/admin-service.js';
import { applyBundleSpecs, exportBundlesYaml } from '../access/bundles-as-code.js';
import { fromPolicyBundle } from '../access/spec.js';
import { scopeKey, type Org } from '../access/model.js';
import { AuditLog } from '../audit/log.js';
import { loadBundleFile } from '../policy/load-bundle-file.js';
import { resolveScope, withScopeFlags, type ScopeOptions } from './scope-flags.js';
import { contextFrom, withStore } from './context.js';

/**
 * tagbox bundle apply | export | attach | detach | list: access as code, in
 * CONTRACT.md's bundle-file format. The format names secrets by vault name and
 * has no field that could hold a secret value. Every change goes through
 * AccessAdmin (so it is audited, bumps the policy revision and reaches running
 * proxies); the actor is `cli:$USER`.
 */
export function registerBundle(program: Command): void {
  const bundle = program.command('bundle').description('access bundles as code: apply a bundle file, export, attach to and detach from scopes');

  bundle
    .command('apply')
    .description('make the stored bundles match FILE (declarative, idempotent); attachments are kept')
    .argument('<file>', 'bundle file (CONTRACT.md format)')
    .option('--dry-run', 'print what would change, change nothing')
    .option('--prune', 'also delete stored bundles that FILE does not have')
    .action(async (file: string, opts: { dryRun?: boolean; prune?: boolean }, command: Command) => {
      const wanted = loadBundleFile(file).bundles.map((b) => fromPolicyBundle(b));
      await withAdmin(command, async (admin, org) => {
        // One transaction for the whole file: all of it is applied, or none.
        const { changes } = await applyBundleSpecs(admin, actor(), org.id, wanted, { prune: opts.prune ?? false, dryRun: opts.dryRun ?? false });
        if (changes.length === 0) {
          process.stdout.write('no changes\n');
          return;
        }
        for (const change of changes) process.stdout.write(`${change.description}\n`);
        process.stdout.write(opts.dryRun ? `dry run: ${changes.length} change(s) not applied\n` : `applied ${changes.length} change(s)\n`);
      });
    });

  bundle
    .command('export')
    .description('print every stored bundle as a bundle file (YAML); `apply` of it changes nothing')
    .action(async (_opts, command: Command) => {
      await withAdmin(command, async (admin, org) => {
        process.stdout.write(await exportBundlesYaml(admin, org.id));
      });
    });

  bundle
    .command('list')
    .alias('ls')
    .description('list stored bundles and where they are attached')
    .action(async (_opts, command: Command) => {
      await withAdmin(command, async (admin, org) => {
        for (const b of await admin.listBundles(org.id)) {
          const scopes = await admin.bundleScopes(org.id, b.name);
          process.stdout.write(`${b.name}\t${b.domains.length} domain(s)\t${b.connections.length} connection(s)\t${scopes.join(' ') || '(not attached)'}\n`);
        }
      });
    });

  for (const verb of ['attach', 'detach'] as const) {
    withScopeFlags(
      bundle
        .command(verb)
        .description(`${verb} a bundle ${verb === 'attach' ? 'to' : 'from'} the org, a workspace or a channel`)
        .argument('<name>', 'bundle name'),
    ).action(async (name: string, opts: ScopeOptions, command: Command) => {
      await withAdmin(command, async (admin, org) => {
        const { scope, label } = await resolveScope(admin, org, opts);
        if (verb === 'attach') {
          const before = await admin.bundleScopes(org.id, name);
          await admin.attach(actor(), org.id, name, scope);
          process.stdout.write(before.includes(scopeKey(scope)) ? `no changes: bundle ${name} is already attached to ${label}\n` : `attached bundle ${name} to ${label}\n`);
        } else {
          const removed = await admin.detach(actor(), org.id, name, scope);
          process.stdout.write(removed ? `detached bundle ${name} from ${label}\n` : `no changes: bundle ${name} is not attached to ${label}\n`);
        }
      });
    });
  }
}


async function withAdmin(command: Command, fn: (admin: AccessAdmin, org: Org) => Promise<void>): Promise<void> {
  const ctx = contextFrom(command);
  await withStore(ctx, async (store) => {
    const admin = new AccessAdmin(store, new AuditLog(store));
    await fn(admin, await admin.ensureDefaultOrg());
  });
}

function actor(): string {
  let user = process.env.USER;
  try {
    user ||= userInfo().username;
  } catch {
    // no passwd entry (containers): the plain actor is enough
  }
  return user ? `cli:${user}` : 'cli';
}
