import { join } from 'node:path';
import type { AccessAdmin } from '../access/admin-service.js';
import { pruneAudit } from '../audit/retention.js';
import { startSiemExport } from '../audit/siem-export.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';

/**
 * What `tagbox up` does in the background: hourly JSON Lines files of network
 * events for SIEM pickup in TAGBOX_HOME/audit, and retention pruning of the
 * audit log by the org's retention days (the chain stays verifiable: pruning
 * moves its anchor). Several replicas may prune at once: it takes the audit lock.
 */
export interface HousekeepingOptions {
  store: ControlStore;
  access: AccessAdmin;
  orgId: string;
  home: string;
  logger: Logger;
  /** Defaults: an export pass every minute; a prune a minute after start, then every 6 hours. */
  siemIntervalMs?: number;
  firstPruneMs?: number;
  pruneEveryMs?: number;
}

export function startHousekeeping(options: HousekeepingOptions): { stop(): Promise<void> } {
  const { store, access, orgId, logger } = options;
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
      clearTimeout(first);
      await siem.stop();
    },
  };
}
