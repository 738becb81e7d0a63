import { userInfo } from 'node:os';

/**
 * The operating-system account running this command, for audit actors such as
 * `operator:<user>`. The account of the real uid comes first ($USER is only a
 * fallback for containers without a passwd entry); the uid when neither exists.
 */
export function osUser(): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // no passwd entry: fall through
  }
  return process.env.USER || `uid${process.getuid?.() ?? 'unknown'}`;
}
