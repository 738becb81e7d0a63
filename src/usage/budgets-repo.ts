import type { Kysely, Selectable } from 'kysely';
import type { BudgetsTable, Database } from '../store/tables.js';
import { newId } from '../util/ids.js';
import type { Budget, BudgetPeriod, BudgetScope, BudgetUnit } from './budgets.js';

/** Rows of `budgets`. Who may change them, and the audit of it, is budget-service.ts's. */
export async function listBudgets(db: Kysely<Database>, orgId: string): Promise<Budget[]> {
  const rows = await db.selectFrom('budgets').selectAll().where('org_id', '=', orgId).orderBy('scope_kind').orderBy('scope_id').orderBy('period').orderBy('unit').execute();
  return rows.map(toBudget);
}

export async function getBudget(db: Kysely<Database>, id: string): Promise<Budget | undefined> {
  const row = await db.selectFrom('budgets').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toBudget(row);
}

export interface BudgetInput {
  orgId: string;
  scope: { kind: BudgetScope; id: string };
  period: BudgetPeriod;
  unit: BudgetUnit;
  limit: number;
  updatedBy: string;
}

/** Sets the limit of the budget for (scope, period, unit), creating it if there is none; one statement, so two at once cannot make two. */
export async function upsertBudget(db: Kysely<Database>, input: BudgetInput): Promise<{ budget: Budget; created: boolean }> {
  const now = new Date().toISOString();
  const before = await db
    .selectFrom('budgets')
    .select('id')
    .where('scope_kind', '=', input.scope.kind)
    .where('scope_id', '=', input.scope.id)
    .where('period', '=', input.period)
    .where('unit', '=', input.unit)
    .executeTakeFirst();
  await db
    .insertInto('budgets')
    .values({
      id: newId(),
      org_id: input.orgId,
      scope_kind: input.scope.kind,
      scope_id: input.scope.id,
      period: input.period,
      unit: input.unit,
      limit: input.limit,
      updated_at: now,
      updated_by: input.updatedBy,
    })
    .onConflict((oc) => oc.columns(['scope_kind', 'scope_id', 'period', 'unit']).doUpdateSet({ limit: input.limit, updated_at: now, updated_by: input.updatedBy }))
    .execute();
  const row = await db
    .selectFrom('budgets')
    .selectAll()
    .where('scope_kind', '=', input.scope.kind)
    .where('scope_id', '=', input.scope.id)
    .where('period', '=', input.period)
    .where('unit', '=', input.unit)
    .executeTakeFirstOrThrow();
  return { budget: toBudget(row), created: before === undefined };
}

export async function deleteBudget(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('budgets').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

function toBudget(row: Selectable<BudgetsTable>): Budget {
  return {
    id: row.id,
    orgId: row.org_id,
    scope: { kind: row.scope_kind as BudgetScope, id: row.scope_id },
    period: row.period as BudgetPeriod,
    unit: row.unit as BudgetUnit,
    limit: Number(row.limit),
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}
