/**
 * Audit events: one append-only record per decision or action — who, where,
 * what, outcome. Never a secret, never a request body.
 */
export const AUDIT_EVENT_TYPES = [
  'invocation',
  'access-denied',
  'session',
  'sandbox',
  'egress',
  'credential-use',
  'admin-change',
  'schedule-run',
  'memory',
  'signin',
  'github',
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** What a caller hands to the log. `ts` defaults to now. */
export interface AuditEventInput {
  type: AuditEventType;
  ts?: string;
  outcome?: string;
  /** Who asked: a member id, an API token's owner, `cli`, `system`. */
  actor?: string;
  session?: string;
  channel?: string;
  /** Any further JSON-serialisable fields (host, path, connection, ...). */
  [field: string]: unknown;
}

/** An event as stored and exported: its place in the chain and its hash. */
export interface AuditEvent extends AuditEventInput {
  ts: string;
  seq: number;
  hash: string;
}
