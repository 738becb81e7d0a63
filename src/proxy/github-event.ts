import type { GithubFacts } from './github-traffic.js';

/**
 * What a session's listener did on GitHub, as the proxy tells the server
 * (beside the blocked-request feed): the branches a push landed, or a pull
 * request it created. The server posts it in the thread, records it as what
 * the turn left and attributes it in the audit. Capped like a blocked event:
 * it crosses a process boundary and its texts came from the upstream.
 */
export type GithubEvent = { session: string; ts: string } & GithubFacts;

export const GITHUB_EVENT_LIMITS = { refs: 50, ref: 255, reason: 300, url: 2048, title: 300, repository: 141 } as const;

/** The event for a session, or undefined when nothing landed (a refused push is told as a blocked request). */
export function githubEvent(session: string, facts: GithubFacts, at: Date = new Date()): GithubEvent | undefined {
  const ts = at.toISOString();
  if (facts.kind === 'pull-request') return { session, ts, ...facts };
  const landed = facts.refs.filter((r) => r.ok).slice(0, GITHUB_EVENT_LIMITS.refs);
  if (landed.length === 0) return undefined;
  return { session, ts, kind: 'push', repository: facts.repository, refs: landed.map((r) => ({ ...r, ref: r.ref.slice(0, GITHUB_EVENT_LIMITS.ref), ...(r.reason ? { reason: r.reason.slice(0, GITHUB_EVENT_LIMITS.reason) } : {}) })) };
}
