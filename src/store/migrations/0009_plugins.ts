import { sql, type Kysely } from 'kysely';

/**
 * Plugins (DESIGN.md "Engines"; docs/PLUGINS.md): Claude Code plugins that
 * admins add and attach to scopes like bundles. Stored content-addressed:
 * `plugin_blobs` holds each distinct tree once, keyed by the sha256 of its
 * canonical encoding (src/plugins/plugin-blob.ts), shared by every plugin row
 * (of any org) with that content; a blob no plugin names is deleted with the
 * change that dropped the last reference.
 *
 * An attachment is (plugin, scope kind, scope id); for the org scope the id is
 * the org's own, so the primary key makes each attachment unique on both
 * dialects (no NULLs in it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('plugin_blobs')
    .addColumn('digest', 'text', (c) => c.primaryKey())
    // base64 of gzip of the canonical encoding (text: portable across dialects, as engine_states).
    .addColumn('data', 'text', (c) => c.notNull())
    // Bytes of the canonical encoding (what the digest is of).
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('plugins')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    // No cascade: a blob goes only when no plugin names it.
    .addColumn('digest', 'text', (c) => c.notNull().references('plugin_blobs.digest'))
    // JSON: the parsed plugin.json and the counts of its components.
    .addColumn('manifest', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('plugins_org_name_unique', ['org_id', 'name'])
    .execute();
  await db.schema.createIndex('plugins_digest_idx').on('plugins').column('digest').execute();

  await db.schema
    .createTable('plugin_attachments')
    .addColumn('plugin_id', 'text', (c) => c.notNull().references('plugins.id').onDelete('cascade'))
    // org | workspace | channel
    .addColumn('scope_kind', 'text', (c) => c.notNull())
    // The org's, workspace's or channel's id.
    .addColumn('scope_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('plugin_attachments_pk', ['plugin_id', 'scope_kind', 'scope_id'])
    .addCheckConstraint('plugin_attachments_kind', sql`scope_kind in ('org', 'workspace', 'channel')`)
    .execute();
  await db.schema.createIndex('plugin_attachments_scope_idx').on('plugin_attachments').columns(['scope_kind', 'scope_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('plugin_attachments').execute();
  await db.schema.dropTable('plugins').execute();
  await db.schema.dropTable('plugin_blobs').execute();
}
