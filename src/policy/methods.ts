/**
 * Read-only narrowing. HTTP methods are case-sensitive (RFC 9110 9.1): `get`
 * is not GET, and a server may treat it as anything, so only the exact
 * upper-case names count as read-only.
 */
const READ_ONLY: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isReadOnlyMethod(method: string): boolean {
  return READ_ONLY.has(method);
}
