import { randomUUID } from 'node:crypto';

/** Ids are random UUIDs made by the app, so both dialects agree and rows can be made before insert. */
export function newId(): string {
  return randomUUID();
}

/** Times are stored as ISO 8601 UTC text: portable, and they sort as they read. */
export function nowIso(): string {
  return new Date().toISOString();
}
