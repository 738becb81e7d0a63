import { Option, type Command } from 'commander';
import { join, resolve } from 'node:path';
import { AuditLog, type AuditQuery } from '../audit/log.js';
import { pruneAudit } from '../audit/retention.js';
import { exportNetworkEvents } from '../audit/siem-export.js';
import { AUDIT_EVENT_TYPES } from '../audit/events.js';
import { failure, invalidInput } from '../errors.js';
import { contextFrom, withStore } from './context.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('read and check the audit log');

  audit
    .command('export')
    .description('print audit events as JSON Lines, oldest first')
    .addOption(new Option('--type <type>', 'only events of this type').choices([...AUDIT_EVENT_TYPES]))
    .option('--since <iso-time>', 'only events at or after this time (ISO 8601)')
    .option('--until <iso-time>', 'only events before this time (ISO 8601)')
    .option('--actor <id>', 'only events by this actor')
    .option('--session <id>', 'only events of this session')
    .option('--channel <id>', 'only events in this channel')
    .action(async (opts: ExportOptions, command: Command) => {
      const since = opts.since === undefined ? undefined : parseIsoTime(opts.since, '--since');
      const until = opts.until === undefined ? undefined : parseIsoTime(opts.until, '--until');
      if (since !== undefined && until !== undefined && until < since) {
        throw invalidInput(`--until (${until}) is before --since (${since})`);
      }
      const filter: AuditQuery = { type: opts.type, since, until, actor: opts.actor, session: opts.session, channel: opts.channel };
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        for await (const event of new AuditLog(store).query(filter)) {
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

  audit
    .command('prune')
    .description('delete events older than a cut; what remains still verifies (the chain is anchored at the last deleted event)')
    .option('--older-than <days>', 'delete events older than this many days')
    .option('--before <iso-time>', 'delete events before this time (ISO 8601)')
    .option('--dry-run', 'print how many events would go; delete nothing')
    .action(async (opts: { olderThan?: string; before?: string; dryRun?: boolean }, command: Command) => {
      if ((opts.olderThan === undefined) === (opts.before === undefined)) {
        throw invalidInput('audit prune: give exactly one of --older-than DAYS or --before ISO-TIME');
      }
      const before = opts.before === undefined ? undefined : parseIsoTime(opts.before, '--before');
      const retentionDays = opts.olderThan === undefined ? undefined : parseDays(opts.olderThan);
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        const result = await pruneAudit(store, { before, retentionDays, dryRun: opts.dryRun === true, actor: 'cli' });
        process.stdout.write(
          result.dryRun
            ? `would prune ${result.pruned} events before ${result.before}\n`
            : `pruned ${result.pruned} events before ${result.before}; the chain now starts after event ${result.anchorSeq}\n`,
        );
      });
    });

  audit
    .command('siem-export')
    .description('one pass of the SIEM export: network events into hourly JSON Lines files')
    .option('--dir <dir>', 'where the files go (default: TAGBOX_HOME/audit)')
    .action(async (opts: { dir?: string }, command: Command) => {
      const ctx = contextFrom(command);
      const dir = resolve(opts.dir ?? join(ctx.home, 'audit'));
      await withStore(ctx, async (store) => {
        const result = await exportNetworkEvents(store, dir);
        if (!result.ran) throw failure(`siem-export: another exporter is running on ${dir}`, 'siem_export_busy');
        process.stdout.write(`exported ${result.exported} events to ${dir}${result.closed.length ? `; closed ${result.closed.join(', ')}` : ''}\n`);
      });
    });
}

/** The export flags are the query's filters, as given on the command line. */
type ExportOptions = Omit<AuditQuery, 'limit'>;

function parseDays(value: string): number {
  const days = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(days)) {
    throw invalidInput(`--older-than: expected a number of days, got "${value}"`);
  }
  return days;
}

function parseIsoTime(value: string, flag: string): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
    throw invalidInput(`${flag}: expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got "${value}"`);
  }
  return new Date(ms).toISOString();
}
