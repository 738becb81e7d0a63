import { Option, type Command } from 'commander';
import { AuditLog } from '../audit/log.js';
import { AUDIT_EVENT_TYPES, type AuditEventType } from '../audit/events.js';
import { failure, invalidInput } from '../errors.js';
import { contextFrom, withStore } from './context.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read and check the audit log');

  audit
    .command('export')
    .description('print audit events as JSON Lines, oldest first')
    .addOption(new Option('--type <type>', 'only events of this type').choices([...AUDIT_EVENT_TYPES]))
    .option('--since <iso-time>', 'only events at or after this time (ISO 8601)')
    .action(async (opts: { type?: AuditEventType; since?: string }, command: Command) => {
      const since = opts.since === undefined ? undefined : parseIsoTime(opts.since, '--since');
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        for await (const event of new AuditLog(store).query({ type: opts.type, since })) {
          if (!process.stdout.write(`${JSON.stringify(event)}\n`)) {
            await new Promise((resolve) => process.stdout.once('drain', resolve));
          }
        }
      });
    });

  audit
    .command('verify')
    .description('check the hash chain; exit 1 naming the first broken event')
    .action(async (_opts, command: Command) => {
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        const result = await new AuditLog(store).verify();
        if (!result.ok) {
          const { seq, ts, type, problem } = result.broken;
          throw failure(`audit chain broken at event ${seq}${type ? ` (${type}` : ''}${ts ? `, ${ts})` : type ? ')' : ''}: ${problem}`, 'audit_broken');
        }
        process.stdout.write(`audit chain intact: ${result.events} events\n`);
      });
    });
}

function parseIsoTime(value: string, flag: string): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw invalidInput(`${flag}: expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got "${value}"`);
  }
  return new Date(ms).toISOString();
}
