import type { Command } from 'commander';
import { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import { mintOperatorLink } from '../server/web-auth/link-service.js';
import { signInUrl } from '../server/web-auth/web-config.js';
import { contextFrom, withStore } from './context.js';
import { osUser } from './os-user.js';

/**
 * `tagbox login-link --member ID [--url BASE]`: the operator's way to let a
 * member (the Owner who lost the first-run link, say) into the web app. Like
 * `tagbox token create`, it runs on the server's machine against its
 * database, adds no power to whoever can already write that database, and is
 * audited as the operator's act. The URL is printed once and not stored.
 */
export function registerLoginLink(program: Command): void {
  program
    .command('login-link')
    .description("print a one-time web sign-in link for a member (shown once); audited as an operator action")
    .requiredOption('--member <id>', 'the member the link signs in as (its id)')
    .option('--url <base>', "the server's URL as browsers reach it (default: web.publicUrl, else http://server.host:server.port)")
    .action(async (opts: { member: string; url?: string }, command: Command) => {
      const ctx = contextFrom(command);
      const base = opts.url ?? ctx.config.web.publicUrl ?? `http://${ctx.config.server.host}:${ctx.config.server.port}`;
      if (!isOrigin(base)) throw invalidInput(`--url "${base}": expected an http:// or https:// URL with no path, such as https://tagbox.example.com`);
      await withStore(ctx, async (store) => {
        const link = await mintOperatorLink(store, new AuditLog(store), { memberId: opts.member, operator: `operator:${osUser()}`, hours: ctx.config.web.signInLinkHours });
        if (!link) throw invalidInput(`--member "${opts.member}": no such member (give a member id, as GET /api/v1/workspaces/ID/members lists them)`);
        process.stdout.write(`${signInUrl(base.replace(/\/$/, ''), link.token)}\n`);
        process.stderr.write(`valid until ${link.expiresAt}, for one use\n`);
      });
    });
}

function isOrigin(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}
