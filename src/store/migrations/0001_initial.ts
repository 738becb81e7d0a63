import { sql, type Kysely } from 'kysely';

/** Orgs, workspaces, channels, members, roles, bundles, connections, scopes, audit. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('orgs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('member_access', 'text', (c) => c.notNull().defaultTo('anyone'))
    .addColumn('member_access_roles', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('dms_allowed', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('retention_days', 'integer', (c) => c.notNull().defaultTo(365))
    .addColumn('zero_data_retention', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('workspaces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('workspaces_external_unique', ['org_id', 'kind', 'external_id'])
    .execute();

  await db.schema
    .createTable('channels')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('is_private', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('channels_external_unique', ['workspace_id', 'external_id'])
    .execute();

  await db.schema
    .createTable('members')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('has_account', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_guest', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('members_external_unique', ['workspace_id', 'external_id'])
    .execute();

  await db.schema
    .createTable('member_roles')
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('member_roles_pk', ['member_id', 'role'])
    .execute();

  await db.schema
    .createTable('bundles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('bundles_name_unique', ['org_id', 'name'])
    .execute();

  await db.schema
    .createTable('bundle_domains')
    .addColumn('bundle_id', 'text', (c) => c.notNull().references('bundles.id').onDelete('cascade'))
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('ports', 'text')
    .addPrimaryKeyConstraint('bundle_domains_pk', ['bundle_id', 'host'])
    .execute();

  await db.schema
    .createTable('connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('bundle_id', 'text', (c) => c.references('bundles.id').onDelete('cascade'))
    .addColumn('owner_member_id', 'text', (c) => c.references('members.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_name', 'text', (c) => c.notNull())
    .addColumn('allowed_websites', 'text', (c) => c.notNull())
    .addColumn('inject', 'text', (c) => c.notNull())
    .addColumn('narrow', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('connections_bundle_name_unique', ['bundle_id', 'name'])
    .addUniqueConstraint('connections_owner_name_unique', ['owner_member_id', 'name'])
    // Exactly one owner: a bundle, or a member (personal connector).
    .addCheckConstraint(
      'connections_one_owner',
      sql`(bundle_id is null) <> (owner_member_id is null)`,
    )
    .execute();

  await db.schema
    .createTable('bundle_scopes')
    .addColumn('bundle_id', 'text', (c) => c.notNull().references('bundles.id').onDelete('cascade'))
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('bundle_scopes_pk', ['bundle_id', 'scope'])
    .execute();
  await db.schema.createIndex('bundle_scopes_scope').on('bundle_scopes').column('scope').execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('ts', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('actor', 'text')
    .addColumn('session_id', 'text')
    .addColumn('channel_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    // No unique index on the hashes: the sequence number is the primary key and
    // appends take the write lock, so a fork cannot be committed anyway, and
    // random-keyed indexes would cost a page write per event on the proxy's path.
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_ts').on('audit_events').column('ts').execute();
  await db.schema.createIndex('audit_events_type_ts').on('audit_events').columns(['type', 'ts']).execute();

  // Where the retained chain starts after retention pruning: the last pruned
  // event's seq and hash. Absent until the first prune; then verify starts here.
  await db.schema
    .createTable('audit_anchor')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'audit_anchor', 'audit_events', 'bundle_scopes', 'connections', 'bundle_domains', 'bundles',
    'member_roles', 'members', 'channels', 'workspaces', 'orgs',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
