import { sql, type Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import { nowIso } from '../util/ids.js';

/**
 * The org's cap on live sandboxes (`agent.maxSandboxesPerOrg`), counted in the
 * store so that it holds across processes and replicas: a session holds a slot
 * from its sandbox's build to its release (`sessions.sandbox_holder`). The
 * count and the take are one transaction under the org's slot lock.
 */
export type SlotAnswer = 'held' | 'taken' | 'full' | 'elsewhere';

export async function takeSandboxSlot(store: ControlStore, orgId: string, sessionId: string, instanceId: string, cap: number): Promise<SlotAnswer> {
  return withWriteTransaction(store, `sandbox-slots:${orgId}`, async (db) => {
    const session = await db.selectFrom('sessions').select('sandbox_holder').where('id', '=', sessionId).executeTakeFirstOrThrow();
    if (session.sandbox_holder === instanceId) return 'held';
    // Its sandbox lives in another live process: the turn runs there.
    if (session.sandbox_holder !== null) return 'elsewhere';
    const row = await db
      .selectFrom('sessions')
      .select(sql<number>`count(*)`.as('n'))
      .where('org_id', '=', orgId)
      .where('sandbox_holder', 'is not', null)
      .executeTakeFirst();
    if (Number(row?.n ?? 0) >= cap) return 'full';
    await db.updateTable('sessions').set({ sandbox_holder: instanceId, sandbox_since: nowIso() }).where('id', '=', sessionId).execute();
    return 'taken';
  });
}

export async function releaseSandboxSlot(db: Kysely<Database>, sessionId: string, instanceId: string): Promise<void> {
  await db.updateTable('sessions').set({ sandbox_holder: null }).where('id', '=', sessionId).where('sandbox_holder', '=', instanceId).execute();
}

/** Slots held by instances that are gone: their sandboxes died with them. */
export async function freeSlotsOf(db: Kysely<Database>, holders: string[]): Promise<number> {
  if (holders.length === 0) return 0;
  const result = await db.updateTable('sessions').set({ sandbox_holder: null }).where('sandbox_holder', 'in', holders).executeTakeFirst();
  return Number(result.numUpdatedRows);
}
