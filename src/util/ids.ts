import { randomUUID } from 'node:crypto';

/** Ids are random UUIDs made by the app, so both dialects agree and rows can be made before insert. */
export function newId(): string {
  return randomUUID();
}

/** Times are stored as ISO 8601 UTC text: portable, and they sort as they read. */
export function nowIso(): string {
  return new Date().toISOString();
}

/**
 * A UUID (version 7, RFC 9562) that sorts by the millisecond it was made, for
 * rows appended at a high rate (usage events): its primary-key b-tree grows
 * at one end instead of taking a random page per insert. The random bits are
 * a random UUID's (version 4), whose 48 leading bits give way to the time.
 */
export function newTimeOrderedId(now = Date.now()): string {
  const time = now.toString(16).padStart(12, '0');
  // 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx': keep what follows the version digit (its variant bits are v7's too).
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}
