import { sql, type Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';

/**
 * Runs fn in one write transaction that serialises with every other access
 * change, across processes: on SQLite BEGIN IMMEDIATE (the database's single
 * write lock, taken up front so two writers never deadlock upgrading a read
 * lock); on Postgres a transaction whose caller may add an advisory lock.
 * fn gets a Kysely bound to that transaction; it must not open another.
 */
export async function accessTransaction<T>(store: ControlStore, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (store.dialect === 'postgres') return store.db.transaction().execute((trx) => fn(trx));
  return store.db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw error;
    }
  });
}

/** On Postgres, serialises callers on one named lock until the transaction ends; SQLite is already serialised. */
export async function lockNamed(db: Kysely<Database>, store: ControlStore, name: string): Promise<void> {
  if (store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(current_schema() || ${'.' + name}))`.execute(db);
}
