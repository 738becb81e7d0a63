import type { Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { takeLock, withWriteTransaction } from '../store/write-transaction.js';

/**
 * The audit log's single write lock: on Postgres a transaction-scoped advisory
 * lock, on SQLite BEGIN IMMEDIATE (the database's write lock). Appends,
 * checkpoints and retention pruning all take it, so that they never interleave
 * and the chain stays linear across processes.
 */
const AUDIT_LOCK = 'audit_events';

export function withAuditWriteLock<T>(store: ControlStore, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return withWriteTransaction(store, AUDIT_LOCK, fn);
}

/** Inside a caller's write transaction: take the audit lock too (Postgres; SQLite holds its one lock already). */
export function takeAuditLock(trx: Kysely<Database>, store: ControlStore): Promise<void> {
  return takeLock(trx, store, AUDIT_LOCK);
}
