import type { Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { takeLock, withWriteTransaction } from '../store/write-transaction.js';

/**
 * Access changes serialise with each other across processes: SQLite's write
 * lock, Postgres row locks (plus a named lock where a caller needs one).
 */
export function accessTransaction<T>(store: ControlStore, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  return withWriteTransaction(store, undefined, fn);
}

/** On Postgres, serialises callers on one named lock until the transaction ends; SQLite is already serialised. */
export function lockNamed(db: Kysely<Database>, store: ControlStore, name: string): Promise<void> {
  return takeLock(db, store, name);
}
