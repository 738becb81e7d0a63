import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Decision } from '../policy/decide.js';
import { gitRequestOf, pullRequestCreationOf, repositoryKey } from '../policy/github-paths.js';
import { normalisePath } from '../policy/paths.js';
import { judgePush, type PushVerdict, type RefAction } from '../policy/push-policy.js';
import { CommandsReader, pushCapabilities, type RefCommand } from './receive-pack-commands.js';
import { parseReport, refusalReport, unreadablePushReport, usesSideband } from './receive-pack-report.js';

/**
 * The two GitHub requests the proxy looks into, on a GitHub App connection's
 * credential decision: a push (`POST …/git-receive-pack`), whose ref updates
 * are checked against the connection's pushBranches before anything is
 * forwarded, and a pull request's creation (`POST /repos/{o}/{r}/pulls`),
 * whose 201 answer is read for the link. What they did goes into the
 * request's audit event and, for a session, to the server (github-event.ts).
 */
export type GithubTraffic = { kind: 'push'; repository: string; pushBranches: string } | { kind: 'pull-request'; repository: string };

export function githubTrafficOf(decision: Decision, method: string, pathAndQuery: string): GithubTraffic | undefined {
  const github = decision.outcome === 'credential' ? decision.inject?.github : undefined;
  if (!github) return undefined;
  const path = normalisePath(pathAndQuery);
  if (github.service === 'git') {
    const git = gitRequestOf(method, path);
    return git?.service === 'receive-pack' ? { kind: 'push', repository: repositoryKey(git), pushBranches: github.pushBranches } : undefined;
  }
  const pulls = pullRequestCreationOf(method, path);
  return pulls ? { kind: 'pull-request', repository: repositoryKey(pulls) } : undefined;
}

/** A ref of a push as the audit records it. */
export interface PushedRef {
  ref: string;
  action: RefAction;
  oldOid: string;
  newOid: string;
  /** Whether it landed: refused by Tagbox, or by the upstream, is false. */
  ok: boolean;
  reason?: string;
}

export type GithubFacts =
  | { kind: 'push'; repository: string; refs: PushedRef[]; refusedBy?: 'tagbox' }
  | { kind: 'pull-request'; repository: string; number: number; url: string; title?: string; head?: string; base?: string };

const MAX_HEAD_BYTES = 1024 * 1024;
const MAX_DRAIN_BYTES = 512 * 1024 * 1024;
/** What is read of an answer for its report or its pull request (both are small). */
export const MAX_TAPPED_BYTES = 1024 * 1024;

export type PushInspection =
  | { ok: true; body: Readable; commands: RefCommand[]; capabilities: string[]; verdict: PushVerdict }
  | { ok: false; reason: string; answer: Buffer; refs: PushedRef[] };

/**
 * Reads the ref-update commands at the head of a push and judges them. An
 * allowed push is forwarded whole (the bytes read, then the rest as it
 * comes). A refused one is not forwarded at all: its body is read to the end
 * and discarded, and the answer is a report git prints ref by ref.
 */
export async function inspectPush(req: IncomingMessage, pushBranches: string, thread: string | undefined): Promise<PushInspection> {
  // A compressed body is not inflated here: the commands could not be read, so it is refused (real git never compresses a push).
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    return refuseUnreadable(req, `Tagbox reads a push's ref updates and cannot read a ${encoding}-encoded one`);
  }
  const source = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const reader = new CommandsReader(MAX_HEAD_BYTES);
  for (;;) {
    const next = await source.next();
    const parsed = reader.push(next.done ? undefined : next.value);
    if (parsed.kind === 'commands') {
      const head = reader.head();
      const verdict = judgePush(parsed.commands, pushBranches, thread);
      if (!verdict.allowed) {
        const refs = pushedRefs(parsed.commands, verdict, undefined);
        await drain(source, reader.bytes);
        const first = verdict.refs.find((r) => !r.allowed && !r.reason?.startsWith('not pushed')) ?? verdict.refs[0]!;
        const reason = `${first.reason ?? 'refused'} (${first.ref})`;
        return { ok: false, reason, answer: refusalReport(verdict.refs, parsed.capabilities, `Tagbox refused this push: ${reason}`), refs };
      }
      return { ok: true, body: Readable.from(rest(head, source)), commands: parsed.commands, capabilities: parsed.capabilities, verdict };
    }
    if (parsed.kind === 'invalid') return refuseUnreadable(req, `Tagbox could not read this push's ref updates: ${parsed.reason}`, source, reader.head());
    if (next.done) return refuseUnreadable(req, "Tagbox could not read this push's ref updates: the request ended before them", source, reader.head());
    if (reader.bytes > MAX_HEAD_BYTES) return refuseUnreadable(req, `Tagbox could not read this push's ref updates: more than ${MAX_HEAD_BYTES} bytes of them`, source, reader.head());
  }
}

/** What each ref of a forwarded push became, from the upstream's report (undefined: unknown, so none counts as landed). */
export function pushOutcome(commands: readonly RefCommand[], verdict: PushVerdict, capabilities: readonly string[], status: number, answer: Buffer | undefined): PushedRef[] {
  const report = status === 200 && answer ? parseReport(answer, usesSideband(capabilities)) : undefined;
  return pushedRefs(commands, verdict, report ?? [], report ? undefined : `the upstream answered ${status} without a report`);
}

function pushedRefs(commands: readonly RefCommand[], verdict: PushVerdict, report: Array<{ ref: string; ok: boolean; reason?: string }> | undefined, unknown?: string): PushedRef[] {
  return commands.map((c, i) => {
    const v = verdict.refs[i]!;
    const base = { ref: c.ref, action: v.action, oldOid: c.oldOid, newOid: c.newOid };
    if (!v.allowed) return { ...base, ok: false, ...(v.reason ? { reason: v.reason } : {}) };
    const status = report?.find((r) => r.ref === c.ref);
    if (!status) return { ...base, ok: false, reason: unknown ?? 'not in the upstream report' };
    return { ...base, ok: status.ok, ...(status.reason ? { reason: status.reason } : {}) };
  });
}

/**
 * A pull request from the upstream's 201 answer, or undefined: only a
 * number and an http(s) link are taken, both checked, the rest capped.
 */
export function pullRequestOf(repository: string, answer: Buffer): Extract<GithubFacts, { kind: 'pull-request' }> | undefined {
  let body: unknown;
  try {
    body = JSON.parse(answer.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  const url = typeof b.html_url === 'string' ? b.html_url : undefined;
  if (typeof b.number !== 'number' || !Number.isInteger(b.number) || b.number <= 0 || !url || url.length > 2048 || !/^https?:\/\/[\x21-\x7e]+$/.test(url)) return undefined;
  const ref = (v: unknown) => (v && typeof v === 'object' && typeof (v as { ref?: unknown }).ref === 'string' ? ((v as { ref: string }).ref).slice(0, 255) : undefined);
  const head = ref(b.head);
  const base = ref(b.base);
  return {
    kind: 'pull-request',
    repository,
    number: b.number,
    url,
    ...(typeof b.title === 'string' ? { title: b.title.slice(0, 300) } : {}),
    ...(head ? { head } : {}),
    ...(base ? { base } : {}),
  };
}

/** Collects the first `max` bytes of what passes. */
export class Tap {
  private readonly chunks: Buffer[] = [];
  private held = 0;

  constructor(private readonly max = MAX_TAPPED_BYTES) {}

  push(chunk: Buffer): void {
    if (this.held >= this.max) return;
    const part = chunk.subarray(0, this.max - this.held);
    this.chunks.push(part);
    this.held += part.length;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function* rest(head: Buffer, source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for (;;) {
    const next = await source.next();
    if (next.done) return;
    yield next.value;
  }
}

async function refuseUnreadable(req: IncomingMessage, reason: string, source?: AsyncIterator<Buffer>, head: Buffer = Buffer.alloc(0)): Promise<PushInspection> {
  await drain(source ?? (req as AsyncIterable<Buffer>)[Symbol.asyncIterator](), head.length);
  return { ok: false, reason, answer: unreadablePushReport(reason, pushCapabilities(head)), refs: [] };
}

/** Reads what is left of a refused push, so that git gets its answer rather than a broken pipe. */
async function drain(source: AsyncIterator<Buffer>, read: number): Promise<void> {
  let size = read;
  while (size <= MAX_DRAIN_BYTES) {
    const next = await source.next();
    if (next.done) return;
    size += next.value.length;
  }
  await source.return?.();
}
