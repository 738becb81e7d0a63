import type { IncomingMessage } from 'node:http';
import type { Decision, Outcome } from '../policy/decide.js';
import type { Logger } from '../log.js';
import type { AuditWriter } from './audit-writer.js';
import { blockedEvent, type BlockedEvent } from './blocked-event.js';
import { githubEvent, type GithubEvent } from './github-event.js';
import type { GithubFacts } from './github-traffic.js';
import type { ListenerState, TunnelInfo } from './listener-state.js';
import type { ProxyMetrics } from './metrics.js';
import type { BudgetBlock, MeteredUsage } from './model-meter.js';
import { loggable, shownTarget, withoutQueries } from './redact.js';

/**
 * Every decision is recorded once, from here: one audit event (and one
 * metrics observation) per request or tunnel, written when it ends so that it
 * carries the upstream status, bytes and duration. Query strings are left out
 * of the recorded path, host and reason (see redact.ts): they often carry
 * tokens. Bodies are never recorded. A blocked decision of a session's
 * listener is also handed to `onBlocked` (the feed to the server, so that the
 * thread can say what was blocked), redacted alike. A metered model
 * request's event carries its usage, or the budget it was refused for.
 */
export interface EgressFacts {
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
}

export interface Finish {
  status?: number;
  outcome?: Outcome;
  reason?: string;
  bytesOut?: number;
  bytesIn?: number;
  /** A metered model response: the usage read from it (tokens, model, cost). */
  usage?: MeteredUsage;
  /** A model request refused for a budget: which one, and what was spent. */
  budget?: BudgetBlock;
  /** A push (its refs, and what became of each) or a created pull request, on a GitHub App connection. */
  github?: GithubFacts;
}

export class EgressRecorder {
  constructor(
    private readonly audit: AuditWriter,
    private readonly metrics: ProxyMetrics | undefined,
    private readonly logger: Logger | undefined,
    private readonly onBlocked?: (event: BlockedEvent) => void,
    private readonly onGithub?: (event: GithubEvent) => void,
  ) {}

  begin(state: ListenerState, facts: EgressFacts, decision: Decision, started = process.hrtime.bigint()) {
    let done = false;
    return {
      finish: (end: Finish = {}): void => {
        if (done) return;
        done = true;
        const outcome = end.outcome ?? decision.outcome;
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.metrics?.observe(outcome, seconds);
        const event = {
          type: 'egress' as const,
          outcome,
          // A budget's reason is Tagbox's own sentence (it names the channel: "#eng"), nothing from the request.
          reason: end.budget && end.reason ? end.reason : withoutQueries(end.reason ?? decision.reason),
          ...(decision.rule ? { rule: decision.rule } : {}),
          ...(decision.connection ? { connection: decision.connection } : {}),
          ...(decision.bundle ? { bundle: decision.bundle } : {}),
          ...(state.session ? { session: state.session } : {}),
          method: facts.method,
          scheme: facts.scheme,
          host: facts.host,
          port: facts.port,
          path: stripQuery(facts.path),
          ...(end.status !== undefined ? { status: end.status } : {}),
          ...(end.bytesOut !== undefined ? { bytes: end.bytesOut } : {}),
          ...(end.bytesIn !== undefined ? { bytesSent: end.bytesIn } : {}),
          ...(end.usage ? { usage: end.usage } : {}),
          ...(end.budget ? { budget: end.budget } : {}),
          ...(end.github ? { github: end.github } : {}),
          durationMs: Math.round(seconds * 1e6) / 1e3,
        };
        // Not awaited, and not needed durable before the answer: a credential's use was recorded before it was sent.
        this.audit.record(event);
        if (outcome === 'blocked' && state.session !== undefined) this.tellBlocked(state.session, facts, event.reason, decision.rule, end.budget);
        if (end.github && state.session !== undefined) this.tellGithub(state.session, end.github);
      },
    };
  }

  /** A request refused before any policy question could be asked (malformed, mismatched authority). */
  rejected(state: ListenerState, req: IncomingMessage, status: number, reason: string, tunnel?: TunnelInfo): void {
    const facts: EgressFacts = {
      method: req.method ?? '',
      scheme: tunnel?.tls ? 'https' : 'http',
      // The raw Host header, which was not valid: quoted without anything that looks like a query.
      host: tunnel?.host ?? shownTarget(req.headers.host ?? '', 255),
      port: tunnel?.port ?? 0,
      path: (req.url ?? '').slice(0, 2048),
    };
    this.begin(state, facts, { outcome: 'blocked', reason, host: facts.host }).finish({ status });
  }

  private tellGithub(session: string, facts: GithubFacts): void {
    const event = this.onGithub && githubEvent(session, facts);
    if (!event) return;
    try {
      this.onGithub!(event);
    } catch (error) {
      this.logger?.error({ err: loggable(error) }, 'GitHub event feed failed');
    }
  }

  /** Never throws into the request path: the feed is a courtesy, the audit event is the record. */
  private tellBlocked(session: string, facts: EgressFacts, reason: string, rule: string | undefined, budget: BudgetBlock | undefined): void {
    if (!this.onBlocked) return;
    try {
      this.onBlocked(blockedEvent(session, { ...facts, reason, ...(rule ? { rule } : {}), ...(budget ? { budget: { scope: budget.scope, period: budget.period } } : {}) }));
    } catch (error) {
      this.logger?.error({ err: loggable(error) }, 'blocked-request feed failed');
    }
  }
}

function stripQuery(path: string): string {
  const i = path.search(/[?#]/);
  const p = i === -1 ? path : path.slice(0, i);
  return p.length > 2048 ? `${p.slice(0, 2048)}…` : p;
}
