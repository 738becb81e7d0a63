import { sql, type Kysely } from 'kysely';
import type { Store } from './connect.js';

/**
 * One write transaction that serialises with every other writer of the same
 * lock, across processes — the discipline behind migrations, audit appends and
 * access changes. SQLite: BEGIN IMMEDIATE, the database's single write lock,
 * taken up front so that two writers never deadlock upgrading a read lock.
 * Postgres: a transaction that first takes the transaction-scoped advisory lock
 * named `lock` (none: only row locks). fn gets a Kysely bound to the transaction
 * and must not open another.
 */
export async function withWriteTransaction<DB, T>(store: Store<DB>, lock: string | undefined, fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
  return store.db.connection().execute(async (conn) => {
    if (store.dialect === 'postgres') {
      await sql`begin`.execute(conn);
      if (lock) await takeLock(conn, store, lock);
    } else {
      await sql`begin immediate`.execute(conn);
    }
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

/** Inside a write transaction, on Postgres, also serialise on `name` until it ends; SQLite is serialised already. */
export async function takeLock<DB>(db: Kysely<DB>, store: Store<DB>, name: string): Promise<void> {
  if (store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(current_schema() || ${'.' + name}))`.execute(db);
}
