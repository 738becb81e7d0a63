import { actorFields, type ActorRef } from '../access/actor.js';
import type { AuditLog } from '../audit/log.js';
import type { ControlStore } from '../store/database.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import type { Budget } from './budgets.js';
import { deleteBudget, upsertBudget, type BudgetInput } from './budgets-repo.js';

/**
 * Setting and removing budgets: the row and its admin-change event in one
 * write transaction, so the record commits with the change or not at all.
 * Who may do it is the caller's question (server/routes/usage.ts). The proxy
 * reads budgets at most a second old, and afresh before it refuses a request,
 * so a raised limit lets the next request through.
 */
export async function putBudget(store: ControlStore, audit: AuditLog, actor: ActorRef, input: Omit<BudgetInput, 'updatedBy'>): Promise<Budget> {
  const who = actorFields(actor);
  return withWriteTransaction(store, undefined, async (db) => {
    const { budget, created } = await upsertBudget(db, { ...input, updatedBy: who.actor });
    await audit.appendIn(db, [
      {
        type: 'admin-change',
        ...who,
        outcome: 'ok',
        org: budget.orgId,
        action: created ? 'budget.create' : 'budget.update',
        target: `budget:${budget.id}`,
        scope: `${budget.scope.kind}:${budget.scope.id}`,
        period: budget.period,
        unit: budget.unit,
        limit: budget.limit,
      },
    ]);
    return budget;
  });
}

/** False when it was gone already (nothing recorded). */
export async function removeBudget(store: ControlStore, audit: AuditLog, actor: ActorRef, budget: Budget): Promise<boolean> {
  return withWriteTransaction(store, undefined, async (db) => {
    if (!(await deleteBudget(db, budget.id))) return false;
    await audit.appendIn(db, [
      {
        type: 'admin-change',
        ...actorFields(actor),
        outcome: 'ok',
        org: budget.orgId,
        action: 'budget.delete',
        target: `budget:${budget.id}`,
        scope: `${budget.scope.kind}:${budget.scope.id}`,
        period: budget.period,
        unit: budget.unit,
      },
    ]);
    return true;
  });
}
