import type { Command } from 'commander';
import { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import { mintOperatorToken } from '../server/token-service.js';
import { hasTokenNamed } from '../server/tokens-repo.js';
import { contextFrom, withStore } from './context.js';
import { osUser } from './os-user.js';

/**
 * `tagbox token create --member ID [--name N]` (CONTRACT.md): run on the
 * server's machine against its TAGBOX_HOME or database, it prints a new
 * member-role API token for that member, once. It is audited as the
 * operator's act (`operator:<os user>`), never as the member's. Stronger
 * tokens are minted by their holders, for themselves, through the API.
 */
export function registerToken(program: Command): void {
  const token = program.command('token').description("API tokens from the operator's shell");

  token
    .command('create')
    .description('print a new member-role API token for a member (shown once); audited as an operator action')
    .requiredOption('--member <id>', 'the member the token is for (its id)')
    .option('--name <name>', 'a label for the token, unique per member (default: operator-<time>)')
    .action(async (opts: { member: string; name?: string }, command: Command) => {
      const name = opts.name ?? `operator-${new Date().toISOString()}`;
      if (name.length < 1 || name.length > 100) throw invalidInput(`--name: expected 1-100 characters (got ${name.length})`);
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        if (await hasTokenNamed(store.db, opts.member, name)) throw invalidInput(`--name "${name}": member ${opts.member} already has a token of that name`);
        const minted = await mintOperatorToken(store, new AuditLog(store), { memberId: opts.member, name, operator: `operator:${osUser()}` });
        if (!minted) throw invalidInput(`--member "${opts.member}": no such member (give a member id, as GET /api/v1/workspaces/ID/members lists them)`);
        process.stdout.write(`${minted.token}\n`);
      });
    });
}
