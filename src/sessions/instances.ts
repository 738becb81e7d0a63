import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';

/**
 * Server instances: who holds a running turn or a live sandbox. Each process
 * registers itself and beats every few seconds. An instance is gone when it
 * said so (stopped_at), when its heartbeat is stale, or — on this host — when
 * its process no longer exists (a `kill -9` is recognised at once on restart,
 * without waiting for the heartbeat to go stale).
 */
export const HEARTBEAT_MS = 3000;
export const STALE_MS = 15_000;

export interface Instance {
  id: string;
  host: string;
  pid: number;
}

export async function registerInstance(db: Kysely<Database>): Promise<Instance> {
  const now = nowIso();
  const instance = { id: `${hostname()}:${process.pid}:${newId().slice(0, 8)}`, host: hostname(), pid: process.pid };
  await db.insertInto('server_instances').values({ ...instance, started_at: now, heartbeat_at: now, stopped_at: null }).execute();
  return instance;
}

export async function heartbeat(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('server_instances').set({ heartbeat_at: nowIso() }).where('id', '=', id).execute();
}

export async function markStopped(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('server_instances').set({ stopped_at: nowIso() }).where('id', '=', id).execute();
}

/** Ids of instances that are gone (never this one). */
export async function goneInstances(db: Kysely<Database>, self: string, now = Date.now()): Promise<string[]> {
  const rows = await db.selectFrom('server_instances').selectAll().where('id', '!=', self).execute();
  const local = hostname();
  return rows
    .filter((r) => r.stopped_at !== null || now - Date.parse(r.heartbeat_at) > STALE_MS || (r.host === local && !processAlive(Number(r.pid))))
    .map((r) => r.id);
}

/** Forgets instances that are gone and hold nothing any more. */
export async function pruneInstances(db: Kysely<Database>, gone: string[]): Promise<void> {
  for (const id of gone) {
    const holds = await db.selectFrom('turns').select('id').where('holder', '=', id).where('status', '=', 'running').executeTakeFirst();
    const sandbox = await db.selectFrom('sessions').select('id').where('sandbox_holder', '=', id).executeTakeFirst();
    if (!holds && !sandbox) await db.deleteFrom('server_instances').where('id', '=', id).execute();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
