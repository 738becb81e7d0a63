/**
 * Which ref updates of a push a GitHub App connection allows: only branches
 * (refs/heads/…) matching its pushBranches pattern, created or updated,
 * never deleted. All or nothing: when one ref is refused the whole push is,
 * so that a push never half-lands. Pure.
 */
import { THREAD_PLACEHOLDER } from './github-settings.js';

export interface RefUpdate {
  ref: string;
  oldOid: string;
  newOid: string;
}

export type RefAction = 'create' | 'update' | 'delete';

export interface RefVerdict {
  ref: string;
  action: RefAction;
  allowed: boolean;
  /** Why it was refused, in words git shows the user. */
  reason?: string;
}

export interface PushVerdict {
  allowed: boolean;
  refs: RefVerdict[];
}

const BRANCH_PREFIX = 'refs/heads/';

export function judgePush(updates: readonly RefUpdate[], pattern: string, thread: string | undefined): PushVerdict {
  const verdicts = updates.map((u) => judgeRef(u, pattern, thread));
  const allowed = verdicts.every((v) => v.allowed);
  if (allowed) return { allowed, refs: verdicts };
  // The refs that would have been fine are refused too, and say why.
  return { allowed, refs: verdicts.map((v) => (v.allowed ? { ...v, allowed: false, reason: 'not pushed: another ref in this push was refused' } : v)) };
}

function judgeRef(u: RefUpdate, pattern: string, thread: string | undefined): RefVerdict {
  const action: RefAction = zero(u.newOid) ? 'delete' : zero(u.oldOid) ? 'create' : 'update';
  const shown = expand(pattern, thread) ?? pattern;
  if (!u.ref.startsWith(BRANCH_PREFIX)) return { ref: u.ref, action, allowed: false, reason: `Tagbox lets the agent push branches only (${shown}), not ${u.ref}` };
  if (action === 'delete') return { ref: u.ref, action, allowed: false, reason: 'Tagbox does not let the agent delete branches' };
  const branch = u.ref.slice(BRANCH_PREFIX.length);
  if (!branchMatches(pattern, thread, branch)) return { ref: u.ref, action, allowed: false, reason: `Tagbox lets the agent push only to branches matching ${shown}` };
  return { ref: u.ref, action, allowed: true };
}

/** Whether `branch` matches the pattern: `*` is one or more characters ("/" included), `{thread}` the thread id. */
export function branchMatches(pattern: string, thread: string | undefined, branch: string): boolean {
  const expanded = expand(pattern, thread);
  if (expanded === undefined) return false;
  const parts = expanded.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+')}$`).test(branch);
}

/** The pattern for this thread; undefined when it names the thread and there is none (a listener of no session). */
function expand(pattern: string, thread: string | undefined): string | undefined {
  if (!pattern.includes(THREAD_PLACEHOLDER)) return pattern;
  if (thread === undefined || !/^[A-Za-z0-9._-]+$/.test(thread)) return undefined;
  return pattern.split(THREAD_PLACEHOLDER).join(thread);
}

function zero(oid: string): boolean {
  return /^0+$/.test(oid);
}
