import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { ScopedPostgresDialect } from './scoped-introspector.js';
import { failure } from '../errors.js';

export type Dialect = 'sqlite' | 'postgres';

/** Where a Kysely database lives: a SQLite file, or a schema in a Postgres database. */
export type StoreLocation =
  | { dialect: 'sqlite'; file: string }
  | { dialect: 'postgres'; url: string; schema: string };

export interface Store<DB> {
  db: Kysely<DB>;
  dialect: Dialect;
  location: StoreLocation;
  /**
   * The raw SQLite handle, for the few hot paths (audit appends) that need
   * prepared statements reused across calls; everything else goes through Kysely.
   */
  sqlite?: BetterSqlite3.Database;
  close(): Promise<void>;
}

/**
 * Opens a database for any of Tagbox's stores (the control plane and the vault
 * use the same mechanics, with separate files or schemas).
 * SQLite: WAL, foreign keys on, a busy timeout so that several processes can share it.
 * Postgres: a pool whose search_path is the store's own schema (created if missing).
 */
export async function openStore<DB>(location: StoreLocation): Promise<Store<DB>> {
  if (location.dialect === 'sqlite') {
    let raw: BetterSqlite3.Database;
    try {
      raw = new BetterSqlite3(location.file);
      raw.pragma('journal_mode = WAL');
      raw.pragma('synchronous = NORMAL');
      raw.pragma('foreign_keys = ON');
      raw.pragma('busy_timeout = 10000');
    } catch (error) {
      throw failure(`cannot open database ${location.file}: ${(error as Error).message}`, 'database_unavailable', error);
    }
    const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: raw }) });
    return { db, dialect: 'sqlite', location, sqlite: raw, close: () => db.destroy() };
  }

  // Loaded only when Postgres is used: most one-machine commands never need it.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: location.url,
    options: `-c search_path=${location.schema}`,
    max: 10,
    connectionTimeoutMillis: 10_000,
    // int8 (bigint) as a JS number: audit sequence numbers stay far below 2^53.
    types: { getTypeParser: (oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) },
  });
  // A broken idle client must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const db = new Kysely<DB>({ dialect: new ScopedPostgresDialect({ pool }, location.schema) });
  try {
    await createSchemaIfMissing(db as Kysely<unknown>, location.schema);
  } catch (error) {
    await db.destroy();
    throw failure(`cannot reach Postgres at ${redactUrl(location.url)}: ${(error as Error).message}`, 'database_unavailable', error);
  }
  return { db, dialect: 'postgres', location, close: () => db.destroy() };
}

// `create schema if not exists` still races between two processes starting at
// once (a unique violation on pg_namespace); losing that race is success.
async function createSchemaIfMissing(db: Kysely<unknown>, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw error;
  }
}

/** A Postgres URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export function describeLocation(location: StoreLocation): string {
  return location.dialect === 'sqlite' ? location.file : `${redactUrl(location.url)} (schema ${location.schema})`;
}
