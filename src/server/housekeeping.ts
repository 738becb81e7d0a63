import { join } from 'node:path';
import type { AccessAdmin } from '../access/admin-service.js';
import { auditCheckpointOptions, auditCheckpointsOf, enableAuditCheckpoints } from '../audit/checkpoints.js';
import { pruneAudit } from '../audit/retention.js';
import { startSiemExport } from '../audit/siem-export.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';

/**
 * What `tagbox up` does in the background: hourly JSON Lines files of network
 * events for SIEM pickup in TAGBOX_HOME/audit, retention pruning of the audit
 * log by the org's retention days (the chain stays verifiable: pruning moves
 * its anchor and signs it), and a periodic signed checkpoint of the audit
 * chain, which also covers events of processes that could not read the
 * signing key. Several replicas may prune at once: it takes the audit lock.
 */
export interface HousekeepingOptions {
  store: ControlStore;
  access: AccessAdmin;
  orgId: string;
  home: string;
  logger: Logger;
  /** Defaults: an export pass every minute; a prune a minute after start, then every 6 hours; a checkpoint every 10 s. */
  siemIntervalMs?: number;
  checkpointEveryMs?: number;
  firstPruneMs?: number;
  pruneEveryMs?: number;
}

export function startHousekeeping(options: HousekeepingOptions): { stop(): Promise<void> } {
  const { store, access, orgId, logger } = options;
  // `tagbox up` opens its store with checkpoints enabled (cli/context.ts); a store opened otherwise gets this home's.
  const checkpoints = auditCheckpointsOf(store) ?? enableAuditCheckpoints(store, auditCheckpointOptions(options.home, undefined, logger));
  const checkpointTimer = setInterval(() => void checkpoints.checkpoint(), options.checkpointEveryMs ?? 10_000);
  checkpointTimer.unref();
  const siem = startSiemExport(store, join(options.home, 'audit'), {
    intervalMs: options.siemIntervalMs ?? 60_000,
    onError: (error) => logger.warn({ err: error }, 'SIEM export pass failed'),
  });
  const prune = async () => {
    try {
      const org = await access.getOrg(orgId);
      const result = await pruneAudit(store, { retentionDays: org.retentionDays, actor: 'system:retention' });
      if (result.pruned > 0) logger.info({ pruned: result.pruned, before: result.before }, 'audit retention pruned old events');
    } catch (error) {
      logger.warn({ err: error }, 'audit retention pass failed');
    }
  };
  const timer = setInterval(() => void prune(), options.pruneEveryMs ?? 6 * 3600_000);
  timer.unref();
  const first = setTimeout(() => void prune(), options.firstPruneMs ?? 60_000);
  first.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      clearInterval(checkpointTimer);
      clearTimeout(first);
      await siem.stop();
      await checkpoints.checkpoint();
    },
  };
}
