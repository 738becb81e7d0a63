import { Option, type Command } from 'commander';
import { join, resolve } from 'node:path';
import { auditCheckpointOptions, auditCheckpointsOf } from '../audit/checkpoints.js';
import { AuditLog, type AuditQuery } from '../audit/log.js';
import { pruneAudit } from '../audit/retention.js';
import { loadSigningKey } from '../audit/signing-key.js';
import { exportNetworkEvents } from '../audit/siem-export.js';
import { AUDIT_EVENT_TYPES } from '../audit/events.js';
import { failure, invalidInput } from '../errors.js';
import { contextFrom, withStore } from './context.js';
import { collect } from './options.js';
import { verifyReport } from '../audit/verify-report.js';
import { verifyOptionsFrom, type VerifyFlags } from './audit-verify.js';

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
    .option('--thread <id>', 'only events of this thread: who asked, its session, sandboxes, turns and every request the agent made for it')
    .option('--channel <id>', 'only events in this channel')
    .action(async (opts: ExportOptions, command: Command) => {
      if (opts.thread !== undefined && opts.session !== undefined && opts.thread !== opts.session) {
        throw invalidInput('--thread and --session name the same thing (a thread is its session); give one');
      }
      const since = opts.since === undefined ? undefined : parseIsoTime(opts.since, '--since');
      const until = opts.until === undefined ? undefined : parseIsoTime(opts.until, '--until');
      if (since !== undefined && until !== undefined && until < since) {
        throw invalidInput(`--until (${until}) is before --since (${since})`);
      }
      const filter: AuditQuery = { type: opts.type, since, until, actor: opts.actor, session: opts.thread ?? opts.session, channel: opts.channel };
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
    .description('check the hash chain, every column and the signed checkpoints; exit 1 naming the first problem')
    .option('--public-key <file>', 'trust this Ed25519 public key (PEM, from `tagbox audit public-key`; repeatable) instead of this home\'s signing key', collect, [])
    .option('--checkpoint-file <file>', 'compare with this external checkpoint (default: audit.checkpointFile, TAGBOX_HOME/audit/checkpoint.json)')
    .option('--no-checkpoint-file', 'do not compare with an external checkpoint: a deleted tail whose checkpoints were deleted too then goes unnoticed')
    .option('--json', 'print the result as one JSON object')
    .action(async (opts: VerifyFlags, command: Command) => {
      const ctx = contextFrom(command);
      const options = verifyOptionsFrom(opts, auditCheckpointOptions(ctx.home, ctx.config));
      await withStore(ctx, async (store) => {
        const result = await new AuditLog(store).verify(options);
        const report = verifyReport(result);
        process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : report.lines.map((l) => `${l}\n`).join(''));
        if (!result.ok) throw failure(report.failure!, 'audit_broken');
      });
    });

  audit
    .command('checkpoint')
    .description('sign a checkpoint of the chain\'s head now (writers do this on their own) and print the newest checkpoint as JSON')
    .action(async (_opts, command: Command) => {
      const ctx = contextFrom(command);
      await withStore(ctx, async (store) => {
        const outcome = await auditCheckpointsOf(store)!.checkpoint({ strict: 'audit checkpoint refused' });
        if (outcome.state === 'made') process.stdout.write(`${JSON.stringify(outcome.checkpoint)}\n`);
        else if (outcome.state === 'covered' && outcome.latest) process.stdout.write(`${JSON.stringify(outcome.latest)}\n`);
        else process.stderr.write('tagbox: the audit log is empty: nothing to checkpoint\n');
      });
    });

  audit
    .command('public-key')
    .description('print the public key of the audit signing key (PEM), for `tagbox audit verify --public-key`; creates the key if there is none yet')
    .action((_opts, command: Command) => {
      const ctx = contextFrom(command);
      const { keyFile } = auditCheckpointOptions(ctx.home, ctx.config);
      process.stdout.write(loadSigningKey({ file: keyFile, create: true }).key.publicKeyPem());
    });

  audit
    .command('prune')
    .description('delete events older than a cut, after verifying them; what remains still verifies (the chain is anchored, and signed, at the last deleted event)')
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
type ExportOptions = Omit<AuditQuery, 'limit'> & { thread?: string };

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
