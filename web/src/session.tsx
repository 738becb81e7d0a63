import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

/** Who is signed in (`GET /api/v1/me`). */
export interface Me {
  member: { id: string; name: string; workspaceId: string };
  org: { id: string; name: string };
  role: 'owner' | 'admin' | 'member';
  via: 'token' | 'session';
  csrfToken?: string;
  expiresAt?: string;
}

export const MeContext = createContext<Me | undefined>(undefined);

export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe outside a signed-in page');
  return me;
}

export const isAdmin = (me: Me) => me.role === 'admin' || me.role === 'owner';
