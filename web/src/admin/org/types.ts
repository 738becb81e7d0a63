/** The shapes the organisation pages read (docs/API.md; the routes in src/server/routes). */

export interface Org {
  id: string;
  name: string;
  memberAccess: 'anyone' | 'members' | 'roles';
  memberAccessRoles: string[];
  dmsAllowed: boolean;
  retentionDays: number;
  zeroDataRetention: boolean;
  instructions: string;
}

export type { Channel, Workspace } from '../places';

export interface Member {
  id: string;
  workspaceId: string;
  displayName: string;
  hasAccount: boolean;
  isGuest: boolean;
  roles: string[];
  /** The org-wide list also names the member's API role and workspace. */
  role?: string;
  workspaceName?: string;
}

export interface Schedule {
  id: string;
  channel: string;
  cron: string;
  timezone: string;
  prompt: string;
  createdBy: string;
  createdAt: string;
  nextRun: string | null;
}

export interface Memory {
  scope: string;
  version: number | null;
  content: string;
  bytes: number;
  updatedAt: string | null;
  history: Array<{ version: number; bytes: number; createdAt: string; session: string; turn: string | null }>;
}

export interface Budget {
  id: string;
  scope: { kind: 'org' | 'channel' | 'member'; id: string };
  period: 'day' | 'month';
  unit: 'tokens' | 'cost';
  limit: number;
}

export interface BudgetStatus extends Budget {
  spent: number;
  remaining: number;
  isSpent: boolean;
  periodStart: string;
}

export interface AuditEvent {
  seq: number;
  ts: string;
  type: string;
  outcome?: string;
  actor?: string;
  session?: string;
  channel?: string;
  host?: string;
  path?: string;
  method?: string;
  [field: string]: unknown;
}
