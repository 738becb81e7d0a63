/**
 * The admin API's roles, each including the one below it:
 *   owner  — everything, including org settings (DMs, member access, retention);
 *   admin  — bundles, connections, secrets, scopes, workspaces, channels, members;
 *   member — their own personal connectors and tokens only.
 */
export const ROLES = ['member', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** The strongest API role among a member's roles (chat roles like "eng" count as member). */
export function apiRoleOf(memberRoles: readonly string[]): Role {
  if (memberRoles.includes('owner')) return 'owner';
  if (memberRoles.includes('admin')) return 'admin';
  return 'member';
}
