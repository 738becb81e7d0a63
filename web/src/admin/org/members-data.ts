import { ApiError, get, seg } from '../../api';
import type { Member, Workspace } from './types';

/**
 * Every member of the org: `GET /members` (org-wide, with roles) when the
 * server has it, else each workspace's list — the same rows either way.
 */
export async function loadMembers(): Promise<{ members: Member[]; workspaces: Workspace[] }> {
  const workspaces = await get<Workspace[]>('workspaces');
  const names = new Map(workspaces.map((w) => [w.id, w.name]));
  let raw: unknown[];
  try {
    const body = await get<unknown>('members');
    raw = Array.isArray(body) ? body : ((body as { members?: unknown[] }).members ?? []);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    raw = (await Promise.all(workspaces.map((w) => get<unknown[]>(`workspaces/${seg(w.id)}/members`)))).flat();
  }
  const members = raw.map((r) => normalise(r as Record<string, unknown>, names));
  members.sort((a, b) => a.displayName.localeCompare(b.displayName));
  return { members, workspaces };
}

function normalise(r: Record<string, unknown>, names: Map<string, string>): Member {
  const workspaceId = String(r.workspaceId ?? (r.workspace as { id?: string } | undefined)?.id ?? '');
  return {
    id: String(r.id),
    workspaceId,
    displayName: String(r.displayName ?? r.name ?? r.id),
    hasAccount: Boolean(r.hasAccount),
    isGuest: Boolean(r.isGuest),
    roles: Array.isArray(r.roles) ? r.roles.map(String) : [],
    ...(typeof r.role === 'string' ? { role: r.role } : {}),
    workspaceName: names.get(workspaceId) ?? ((r.workspace as { name?: string } | undefined)?.name ?? workspaceId),
  };
}

/** The API role a member's roles give (owner > admin > member), as the server counts it. */
export function apiRole(m: Member): 'owner' | 'admin' | 'member' {
  if (m.role === 'owner' || m.roles.includes('owner')) return 'owner';
  if (m.role === 'admin' || m.roles.includes('admin')) return 'admin';
  return 'member';
}
