import type { GithubSettings } from '../policy/github-settings.js';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { BundlesTable, ConnectionsTable, Database } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import { scopeKey, type Bundle, type BundleSpec, type Connection, type ConnectionSpec, type DomainEntry, type Scope } from './model.js';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Access bundles with their domains, connections and scope attachments: one
 * aggregate. A bundle is written whole (put = create or replace its contents),
 * which is what declarative `bundle apply` needs.
 */
export async function putBundle(db: Kysely<Database>, orgId: string, spec: BundleSpec): Promise<Bundle> {
  await db.transaction().execute((trx) => putBundleIn(trx, orgId, spec));
  return (await getBundleByName(db, orgId, spec.name))!;
}

/** putBundle inside a transaction the caller owns (AccessAdmin's); returns the bundle id. */
export async function putBundleIn(trx: Db, orgId: string, spec: BundleSpec): Promise<string> {
  const now = nowIso();
  const existing = await trx.selectFrom('bundles').select('id').where('org_id', '=', orgId).where('name', '=', spec.name).executeTakeFirst();
  const id = existing?.id ?? newId();
  if (existing) {
    await trx.updateTable('bundles').set({ description: spec.description ?? '', updated_at: now }).where('id', '=', id).execute();
    await trx.deleteFrom('bundle_domains').where('bundle_id', '=', id).execute();
  } else {
    await trx.insertInto('bundles').values({ id, org_id: orgId, name: spec.name, description: spec.description ?? '', created_at: now, updated_at: now }).execute();
  }
  if (spec.domains.length) {
    await trx
      .insertInto('bundle_domains')
      .values(spec.domains.map((d) => ({ bundle_id: id, host: d.host, ports: d.ports ? JSON.stringify(d.ports) : null })))
      .execute();
  }
  await replaceConnections(trx, { orgId, bundleId: id, ownerMemberId: null }, spec.connections);
  return id;
}

export async function getBundleByName(db: Db, orgId: string, name: string): Promise<Bundle | undefined> {
  const row = await db.selectFrom('bundles').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  return row && (await hydrate(db, [row]))[0];
}

export async function listBundles(db: Db, orgId: string): Promise<Bundle[]> {
  const rows = await db.selectFrom('bundles').selectAll().where('org_id', '=', orgId).orderBy('name').execute();
  return hydrate(db, rows);
}

export async function deleteBundle(db: Db, orgId: string, name: string): Promise<boolean> {
  const result = await db.deleteFrom('bundles').where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function attachBundle(db: Db, bundleId: string, scope: Scope): Promise<void> {
  const key = scopeKey(scope);
  const exists = await db.selectFrom('bundle_scopes').select('scope').where('bundle_id', '=', bundleId).where('scope', '=', key).executeTakeFirst();
  if (!exists) await db.insertInto('bundle_scopes').values({ bundle_id: bundleId, scope: key, created_at: nowIso() }).execute();
}

export async function detachBundle(db: Db, bundleId: string, scope: Scope): Promise<boolean> {
  const result = await db.deleteFrom('bundle_scopes').where('bundle_id', '=', bundleId).where('scope', '=', scopeKey(scope)).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function scopesOf(db: Db, bundleId: string): Promise<string[]> {
  const rows = await db.selectFrom('bundle_scopes').select('scope').where('bundle_id', '=', bundleId).orderBy('scope').execute();
  return rows.map((r) => r.scope);
}

/** Each bundle's scope keys, for several bundles in one query. */
export async function scopeKeysOf(db: Db, bundleIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < bundleIds.length; i += 500) {
    const rows = await db.selectFrom('bundle_scopes').select(['bundle_id', 'scope']).where('bundle_id', 'in', bundleIds.slice(i, i + 500)).execute();
    for (const r of rows) out.set(r.bundle_id, [...(out.get(r.bundle_id) ?? []), r.scope]);
  }
  return out;
}

/** Bundles attached to any of the given scopes (the union a channel gets), each once. */
export async function bundlesAttachedTo(db: Db, orgId: string, scopes: Scope[]): Promise<Bundle[]> {
  if (scopes.length === 0) return [];
  const rows = await db
    .selectFrom('bundles')
    .selectAll('bundles')
    .where('bundles.org_id', '=', orgId)
    .where((eb) =>
      eb.exists(
        eb.selectFrom('bundle_scopes').select('bundle_scopes.bundle_id').whereRef('bundle_scopes.bundle_id', '=', 'bundles.id').where('bundle_scopes.scope', 'in', scopes.map(scopeKey)),
      ),
    )
    .orderBy('bundles.name')
    .execute();
  return hydrate(db, rows);
}

/** A member's personal connectors (usable only in that member's DMs). */
export async function putPersonalConnector(db: Kysely<Database>, orgId: string, memberId: string, spec: ConnectionSpec): Promise<Connection> {
  await db.transaction().execute((trx) => putPersonalConnectorIn(trx, orgId, memberId, spec));
  return (await personalConnectors(db, memberId)).find((c) => c.name === spec.name)!;
}

/** putPersonalConnector inside a transaction the caller owns. */
export async function putPersonalConnectorIn(trx: Db, orgId: string, memberId: string, spec: ConnectionSpec): Promise<void> {
  await trx.deleteFrom('connections').where('owner_member_id', '=', memberId).where('name', '=', spec.name).execute();
  await insertConnections(trx, { orgId, bundleId: null, ownerMemberId: memberId }, [spec]);
}

export async function deletePersonalConnector(db: Db, memberId: string, name: string): Promise<boolean> {
  const result = await db.deleteFrom('connections').where('owner_member_id', '=', memberId).where('name', '=', name).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function personalConnectors(db: Db, memberId: string): Promise<Connection[]> {
  const rows = await db.selectFrom('connections').selectAll().where('owner_member_id', '=', memberId).orderBy('name').execute();
  return rows.map(toConnection);
}

async function replaceConnections(trx: Db, owner: ConnectionOwner, specs: ConnectionSpec[]): Promise<void> {
  await trx.deleteFrom('connections').where('bundle_id', '=', owner.bundleId!).execute();
  await insertConnections(trx, owner, specs);
}

interface ConnectionOwner {
  orgId: string;
  bundleId: string | null;
  ownerMemberId: string | null;
}

async function insertConnections(trx: Db, owner: ConnectionOwner, specs: ConnectionSpec[]): Promise<void> {
  if (specs.length === 0) return;
  const now = nowIso();
  await trx
    .insertInto('connections')
    .values(
      specs.map((c) => ({
        id: newId(),
        org_id: owner.orgId,
        bundle_id: owner.bundleId,
        owner_member_id: owner.ownerMemberId,
        name: c.name,
        secret_name: c.secret,
        allowed_websites: JSON.stringify(c.allowedWebsites),
        inject: JSON.stringify(c.inject),
        narrow: c.narrow ? JSON.stringify(c.narrow) : null,
        plain_http: c.plainHttp ? 1 : 0,
        github: c.github ? JSON.stringify(c.github) : null,
        created_at: now,
        updated_at: now,
      })),
    )
    .execute();
}

async function hydrate(db: Db, rows: Selectable<BundlesTable>[]): Promise<Bundle[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const domains = new Map<string, DomainEntry[]>();
  const connections = new Map<string, Connection[]>();
  // Chunked to stay under SQLite's bound-parameter limit for large policies.
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const d of await db.selectFrom('bundle_domains').selectAll().where('bundle_id', 'in', chunk).orderBy('host').execute()) {
      const list = domains.get(d.bundle_id) ?? [];
      list.push(d.ports ? { host: d.host, ports: JSON.parse(d.ports) as number[] } : { host: d.host });
      domains.set(d.bundle_id, list);
    }
    for (const c of await db.selectFrom('connections').selectAll().where('bundle_id', 'in', chunk).orderBy('name').execute()) {
      const list = connections.get(c.bundle_id!) ?? [];
      list.push(toConnection(c));
      connections.set(c.bundle_id!, list);
    }
  }
  return rows.map((r) => ({
    id: r.id,
    orgId: r.org_id,
    name: r.name,
    description: r.description,
    domains: domains.get(r.id) ?? [],
    connections: connections.get(r.id) ?? [],
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

function toConnection(row: Selectable<ConnectionsTable>): Connection {
  return {
    id: row.id,
    orgId: row.org_id,
    bundleId: row.bundle_id,
    ownerMemberId: row.owner_member_id,
    name: row.name,
    secret: row.secret_name,
    allowedWebsites: JSON.parse(row.allowed_websites) as ConnectionSpec['allowedWebsites'],
    inject: JSON.parse(row.inject) as Connection['inject'],
    ...(row.narrow ? { narrow: JSON.parse(row.narrow) as Connection['narrow'] } : {}),
    ...(row.plain_http ? { plainHttp: true } : {}),
    ...(row.github ? { github: JSON.parse(row.github) as GithubSettings } : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
