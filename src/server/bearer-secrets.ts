import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bearer secrets (API tokens, sign-in links, session cookies): made, stored and compared one way. */

/** 32 random bytes (256 bits), base64url, behind a prefix that says what it is. */
export function randomSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** What is stored of a secret: 32 random bytes need no salt or stretching (nothing to guess). */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** Compares in constant time (for equal lengths; a length mismatch is simply false). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function hoursFrom(now: number, hours: number): string {
  return new Date(now + hours * 3_600_000).toISOString();
}
