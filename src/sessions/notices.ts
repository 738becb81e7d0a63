import { budgetSpentText, type BudgetPeriod, type BudgetScope } from '../usage/budgets.js';
import { neutralise } from '../util/output-limits.js';

/** What the thread is told when the proxy blocked one of its requests. Pure. */
export interface BlockedFacts {
  host: string;
  port: number;
  reason: string;
  /** A model request refused because this budget is spent. */
  budget?: { scope: BudgetScope; period: BudgetPeriod };
}

export type NoticePlace = { kind: 'channel'; channelName: string | undefined } | { kind: 'dm' };

/** One notice per host per turn (and one per spent budget): the key it is counted by. */
export function noticeKey(facts: BlockedFacts): string {
  if (facts.budget) return `budget:${facts.budget.scope}:${facts.budget.period}`;
  if (facts.reason.startsWith('push refused: ')) return `push:${facts.host.toLowerCase()}`;
  return `${facts.host.toLowerCase()}:${facts.port}`;
}

export function blockedNotice(facts: BlockedFacts, place: NoticePlace): string {
  // "The budget for #eng is spent for today; an admin can raise it."
  if (facts.budget) {
    const text = budgetSpentText(facts.budget, place.kind === 'channel' ? channelRef(place) : 'this channel');
    return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
  }
  // Host and reason come from the sandbox's request: shown as data, and short.
  const host = neutralise(facts.host).slice(0, 255);
  const reason = neutralise(facts.reason).slice(0, 300);
  const target = facts.port === 443 || facts.port === 80 ? host : `${host}:${facts.port}`;
  // A push the proxy judged (github-traffic.ts): the reason names the branches the connection allows.
  if (reason.startsWith('push refused: ')) return `Refused a push to ${target}: ${reason.slice('push refused: '.length)}.`;
  // A GitHub API write the push policy does not allow (github-paths.ts apiRefusal): no admin can allow it by a bundle.
  if (/the GitHub App token/.test(reason)) return `Refused a request to ${target}: ${reason.replace(/^.*?, but /, '')}.`;
  const allow = /private|loopback|link-local|metadata|reserved|address/i.test(reason)
    ? place.kind === 'dm'
      ? 'Private and internal addresses are never reachable from a DM.'
      : `To allow it, an admin must list that exact address in a bundle attached to ${channelRef(place)}.`
    : place.kind === 'dm'
      ? `To allow it, add a personal connector for ${host} (a DM uses only your own connectors).`
      : `To allow it, ask an admin to add ${host} to a bundle attached to ${channelRef(place)} (or to its workspace or the org).`;
  return `Blocked a request to ${target}: ${reason}. ${allow}`;
}

function channelRef(place: { channelName: string | undefined }): string {
  return place.channelName ? `#${neutralise(place.channelName)}` : 'this channel';
}

/** What the thread is told when the turn opened a pull request (the link, from GitHub's answer). Pure. */
export function pullRequestNotice(pr: { repository: string; number: number; url: string; title?: string }): string {
  // A title is one line in the thread (GitHub's own titles are).
  const title = pr.title ? ` “${neutralise(pr.title).replace(/\s+/g, ' ').trim().slice(0, 200)}”` : '';
  return `Opened pull request ${neutralise(pr.repository)}#${pr.number}${title}: ${neutralise(pr.url)}`;
}

/** What the thread is told when a push landed: the branches, by name. Pure. */
export function pushNotice(repository: string, refs: readonly string[]): string {
  const names = refs.map((r) => neutralise(r.replace(/^refs\/heads\//, '')));
  return `Pushed ${names.length === 1 ? `branch ${names[0]}` : `branches ${names.join(', ')}`} to ${neutralise(repository)}.`;
}
