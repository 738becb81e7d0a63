import type { Kysely, Selectable } from 'kysely';
import type { Scope } from '../access/model.js';
import { failure } from '../errors.js';
import type { Database, PluginsTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import { decodePlugin } from './plugin-blob.js';
import type { PluginManifest } from './plugin-layout.js';
import type { PluginFile } from './plugin-tree.js';

/**
 * Plugins, their blobs and their attachments: the only file that touches
 * those rows. Blobs are written once per digest and deleted when no plugin
 * names them any more (`dropBlobIfUnused`, in the transaction of the change).
 */
export interface StoredPlugin {
  id: string;
  orgId: string;
  name: string;
  digest: string;
  manifest: PluginManifest;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export async function getPlugin(db: Kysely<Database>, orgId: string, name: string): Promise<StoredPlugin | undefined> {
  const row = await db.selectFrom('plugins').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  return row && toPlugin(row);
}

export async function listPlugins(db: Kysely<Database>, orgId: string): Promise<StoredPlugin[]> {
  const rows = await db.selectFrom('plugins').selectAll().where('org_id', '=', orgId).orderBy('name').execute();
  return rows.map(toPlugin);
}

/** Creates the plugin, or points the existing one of that name at a new digest and manifest. */
export async function putPlugin(db: Kysely<Database>, input: { orgId: string; name: string; digest: string; manifest: PluginManifest; actor: string }): Promise<void> {
  const now = nowIso();
  const manifest = JSON.stringify(input.manifest);
  const existing = await db.selectFrom('plugins').select('id').where('org_id', '=', input.orgId).where('name', '=', input.name).executeTakeFirst();
  if (existing) {
    await db.updateTable('plugins').set({ digest: input.digest, manifest, updated_at: now }).where('id', '=', existing.id).execute();
    return;
  }
  await db
    .insertInto('plugins')
    .values({ id: newId(), org_id: input.orgId, name: input.name, digest: input.digest, manifest, created_by: input.actor, created_at: now, updated_at: now })
    .execute();
}

export async function deletePlugin(db: Kysely<Database>, orgId: string, name: string): Promise<boolean> {
  const result = await db.deleteFrom('plugins').where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function putBlob(db: Kysely<Database>, blob: { digest: string; data: string; size: number }): Promise<void> {
  await db
    .insertInto('plugin_blobs')
    .values({ digest: blob.digest, data: blob.data, size: blob.size, created_at: nowIso() })
    .onConflict((oc) => oc.column('digest').doNothing())
    .execute();
}

export async function getBlob(db: Kysely<Database>, digest: string): Promise<{ digest: string; data: string } | undefined> {
  return db.selectFrom('plugin_blobs').select(['digest', 'data']).where('digest', '=', digest).executeTakeFirst();
}

/** A plugin's files from its blob, decoded and verified (decodePlugin); a missing blob is refused alike. */
export async function storedFiles(db: Kysely<Database>, plugin: { name: string; digest: string }): Promise<PluginFile[]> {
  const where = `plugin "${plugin.name}"`;
  const blob = await getBlob(db, plugin.digest);
  if (!blob) throw failure(`${where}: stored blob sha256:${plugin.digest.slice(0, 12)}… is missing; add the plugin again`, 'plugin_blob_invalid');
  return decodePlugin(blob, where);
}

export async function dropBlobIfUnused(db: Kysely<Database>, digest: string): Promise<void> {
  await db
    .deleteFrom('plugin_blobs')
    .where('digest', '=', digest)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('plugins').select('plugins.id').where('plugins.digest', '=', digest))))
    .execute();
}

/** Idempotent; true when the attachment is new. */
export async function attachPlugin(db: Kysely<Database>, pluginId: string, scope: StoredScope): Promise<boolean> {
  const exists = await db
    .selectFrom('plugin_attachments')
    .select('plugin_id')
    .where('plugin_id', '=', pluginId)
    .where('scope_kind', '=', scope.kind)
    .where('scope_id', '=', scope.id)
    .executeTakeFirst();
  if (exists) return false;
  await db.insertInto('plugin_attachments').values({ plugin_id: pluginId, scope_kind: scope.kind, scope_id: scope.id, created_at: nowIso() }).execute();
  return true;
}

export async function detachPlugin(db: Kysely<Database>, pluginId: string, scope: StoredScope): Promise<boolean> {
  const result = await db
    .deleteFrom('plugin_attachments')
    .where('plugin_id', '=', pluginId)
    .where('scope_kind', '=', scope.kind)
    .where('scope_id', '=', scope.id)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

const KIND_ORDER: Record<string, number> = { org: 0, workspace: 1, channel: 2 };

/** Attachments of each plugin of the org, as scopes: the org, then workspaces, then channels. */
export async function attachmentsByPlugin(db: Kysely<Database>, orgId: string): Promise<Map<string, Scope[]>> {
  const rows = await db
    .selectFrom('plugin_attachments')
    .innerJoin('plugins', 'plugins.id', 'plugin_attachments.plugin_id')
    .select(['plugin_attachments.plugin_id', 'plugin_attachments.scope_kind', 'plugin_attachments.scope_id'])
    .where('plugins.org_id', '=', orgId)
    .orderBy('plugin_attachments.scope_id')
    .execute();
  rows.sort((a, b) => (KIND_ORDER[a.scope_kind] ?? 3) - (KIND_ORDER[b.scope_kind] ?? 3));
  const out = new Map<string, Scope[]>();
  for (const r of rows) {
    const scope: Scope = r.scope_kind === 'org' ? { kind: 'org' } : { kind: r.scope_kind as 'workspace' | 'channel', id: r.scope_id };
    out.set(r.plugin_id, [...(out.get(r.plugin_id) ?? []), scope]);
  }
  return out;
}

/** The org's plugins attached to any of the given scopes, each once, by name. */
export async function pluginsAttachedTo(db: Kysely<Database>, orgId: string, scopes: StoredScope[]): Promise<StoredPlugin[]> {
  if (scopes.length === 0) return [];
  const rows = await db
    .selectFrom('plugins')
    .selectAll('plugins')
    .where('plugins.org_id', '=', orgId)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('plugin_attachments')
          .select('plugin_attachments.plugin_id')
          .whereRef('plugin_attachments.plugin_id', '=', 'plugins.id')
          .where((w) => w.or(scopes.map((s) => w.and([w('plugin_attachments.scope_kind', '=', s.kind), w('plugin_attachments.scope_id', '=', s.id)])))),
      ),
    )
    .orderBy('plugins.name')
    .execute();
  return rows.map(toPlugin);
}

/** A scope as stored: the org scope carries the org's id. */
export interface StoredScope {
  kind: 'org' | 'workspace' | 'channel';
  id: string;
}

export function storedScope(orgId: string, scope: Scope): StoredScope {
  return scope.kind === 'org' ? { kind: 'org', id: orgId } : scope;
}

function toPlugin(row: Selectable<PluginsTable>): StoredPlugin {
  let manifest: PluginManifest;
  try {
    manifest = JSON.parse(row.manifest) as PluginManifest;
  } catch {
    throw failure(`plugin "${row.name}": its stored manifest is not JSON; add the plugin again`, 'plugin_manifest_invalid');
  }
  return { id: row.id, orgId: row.org_id, name: row.name, digest: row.digest, manifest, createdBy: row.created_by, createdAt: row.created_at, updatedAt: row.updated_at };
}
