import type { BudgetPeriod, BudgetScope } from '../usage/budgets.js';
import { shownTarget, withoutQueries } from './redact.js';

/**
 * One blocked decision of a session's listener, as the proxy tells the server
 * (so that the session's thread can say what was blocked and why). It carries
 * what the audit event carries, redacted the same way (nothing from a query
 * string, see redact.ts), and is smaller: a flood of these crosses a process
 * boundary, so every text field is capped.
 */
export interface BlockedEvent {
  /** The listener's session: the socket the request arrived on, never anything it sent. */
  session: string;
  /** ISO 8601, when the decision was recorded. */
  ts: string;
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  /** Without query or fragment; '' for a CONNECT. */
  path: string;
  reason: string;
  /** The rule that matched, when one did (a narrowing that refused the method or path, say). */
  rule?: string;
  /** A model request refused because this budget is spent (the thread says so in those words). */
  budget?: BudgetFacts;
}

export interface BudgetFacts {
  scope: BudgetScope;
  period: BudgetPeriod;
}

export const BLOCKED_EVENT_LIMITS = { host: 255, path: 512, reason: 512, method: 32, rule: 512 } as const;

export interface BlockedFacts {
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  reason: string;
  rule?: string;
  budget?: BudgetFacts;
}

export function blockedEvent(session: string, facts: BlockedFacts, at: Date = new Date()): BlockedEvent {
  return {
    session,
    ts: at.toISOString(),
    method: shownTarget(facts.method, BLOCKED_EVENT_LIMITS.method),
    scheme: facts.scheme,
    // A rejected request's host may be a raw, invalid Host header: quoted like a reason quotes it.
    host: shownTarget(facts.host, BLOCKED_EVENT_LIMITS.host),
    port: facts.port,
    path: shownTarget(facts.path, BLOCKED_EVENT_LIMITS.path),
    // A budget's reason is Tagbox's own sentence ("the budget for #eng is spent..."), not request data.
    reason: capped(facts.budget ? facts.reason : withoutQueries(facts.reason), BLOCKED_EVENT_LIMITS.reason),
    ...(facts.rule ? { rule: capped(facts.rule, BLOCKED_EVENT_LIMITS.rule) } : {}),
    ...(facts.budget ? { budget: { scope: facts.budget.scope, period: facts.budget.period } } : {}),
  };
}

function capped(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
