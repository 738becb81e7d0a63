import type { Kysely } from 'kysely';

/**
 * A connection's explicit consent to send its credential over plain HTTP
 * (bundle files' `plainHttp: true`, e.g. for a loopback service). Without it
 * the proxy injects only over TLS and blocks the rest (docs/POLICY.md).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').addColumn('plain_http', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').dropColumn('plain_http').execute();
}
