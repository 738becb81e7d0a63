import type { Client as PgClient } from 'pg';
import { compilePolicy, type EgressPolicy } from '../policy/compile.js';
import type { ControlStore } from '../store/database.js';
import { effectivePolicy, orgOfPlace, type Place, type SessionPolicyOptions } from './effective-policy.js';
import { POLICY_CHANNEL, policyEvents, readRevision } from './policy-revision.js';

export interface PolicyWatch {
  close(): Promise<void>;
}

export interface WatchOptions {
  /** SQLite poll interval (default 250 ms); on Postgres the safety-net poll is 4x this. */
  pollMs?: number;
  /** Told of errors reading or compiling the policy (the watcher has already failed closed). */
  onError?: (error: unknown) => void;
  /** What every session's policy also holds (the model connection). */
  session?: SessionPolicyOptions;
}

/** Deny-all: what a place gets while its policy cannot be read (invariant 7, fail closed). */
const DENY_ALL = compilePolicy([]);

/**
 * Keeps a running session's policy current. Recompiles the place's effective
 * policy and calls onChange whenever its org's policy revision moves:
 *  - in this process, at once (AccessAdmin emits after each commit);
 *  - on Postgres, on NOTIFY `tagbox_policy` (payload: org id) over a dedicated
 *    connection, so every server and proxy process stays in step;
 *  - on SQLite, by polling the revision row (the proxy and the CLI are other
 *    processes; one indexed read every 250 ms is cheap);
 *  - and on Postgres also by a slower poll, in case a notification was missed
 *    while the listening connection was being re-established.
 * Secret rotation needs none of this: the proxy resolves secrets at request time.
 * onChange is not called for the initial policy; the caller computes that.
 */
export async function watchPolicy(store: ControlStore, place: Place, onChange: (policy: EgressPolicy) => void, options: WatchOptions = {}): Promise<PolicyWatch> {
  const orgId = await orgOfPlace(store.db, place);
  let revision = await readRevision(store.db, orgId);
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;

  const refresh = async (): Promise<void> => {
    try {
      const now = await readRevision(store.db, orgId);
      if (now === revision || closed) return;
      const policy = await effectivePolicy(store.db, place, options.session);
      if (closed) return;
      revision = now;
      onChange(policy);
    } catch (error) {
      if (closed) return;
      revision = -1; // retry on the next signal or tick
      onChange(DENY_ALL);
      options.onError?.(error);
    }
  };
  // One refresh at a time; a signal during a refresh runs one more after it.
  const trigger = (): void => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = refresh().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        trigger();
      }
    });
  };

  const onLocal = (changed: string) => changed === orgId && trigger();
  policyEvents.on('change', onLocal);
  const pollMs = options.pollMs ?? 250;
  const poll = subscribePoll(store, orgId, store.dialect === 'postgres' ? pollMs * 4 : pollMs, (seen) => seen !== revision && trigger());
  const listener = store.location.dialect === 'postgres' ? await listen(store.location.url, orgId, trigger) : undefined;
  // Anything committed between reading the revision and listening.
  trigger();

  return {
    close: async () => {
      closed = true;
      poll();
      policyEvents.off('change', onLocal);
      await listener?.close();
      await running;
    },
  };
}

/**
 * One revision poll per store, org and interval, shared by every watcher of
 * that org (a server may run many sessions in one org): one indexed read per
 * tick, whatever the number of sessions. Returns the unsubscribe function.
 */
type Poller = { subscribers: Set<(revision: number) => void>; timer: NodeJS.Timeout };
const pollers = new WeakMap<ControlStore, Map<string, Poller>>();

function subscribePoll(store: ControlStore, orgId: string, intervalMs: number, onTick: (revision: number) => void): () => void {
  let byOrg = pollers.get(store);
  if (!byOrg) pollers.set(store, (byOrg = new Map()));
  const key = `${orgId}@${intervalMs}`;
  let poller = byOrg.get(key);
  if (!poller) {
    const subscribers = new Set<(revision: number) => void>();
    const timer = setInterval(() => {
      readRevision(store.db, orgId).then(
        (revision) => subscribers.forEach((s) => s(revision)),
        () => subscribers.forEach((s) => s(-2)), // unreadable: every watcher retries (and fails closed)
      );
    }, intervalMs);
    timer.unref();
    poller = { subscribers, timer };
    byOrg.set(key, poller);
  }
  const p = poller;
  p.subscribers.add(onTick);
  return () => {
    p.subscribers.delete(onTick);
    if (p.subscribers.size === 0 && byOrg.get(key) === p) {
      clearInterval(p.timer);
      byOrg.delete(key);
    }
  };
}

/**
 * One LISTEN connection per database per process, shared by every watcher
 * (a server watches one place per running session; a pooled connection would
 * be handed to other queries). Reconnects after errors, and then signals every
 * subscriber, since notifications sent meanwhile are lost.
 */
interface Hub {
  subscribers: Set<(orgId: string | undefined) => void>;
  ready: Promise<void>;
  close(): Promise<void>;
}
const hubs = new Map<string, Hub>();

async function listen(url: string, orgId: string, onNotify: () => void): Promise<{ close(): Promise<void> }> {
  let hub = hubs.get(url);
  if (!hub) {
    hub = openHub(url);
    hubs.set(url, hub);
  }
  const subscriber = (changed: string | undefined) => (changed === undefined || changed === orgId) && onNotify();
  hub.subscribers.add(subscriber);
  try {
    await hub.ready;
  } catch (error) {
    hub.subscribers.delete(subscriber);
    if (hub.subscribers.size === 0 && hubs.get(url) === hub) hubs.delete(url);
    throw error;
  }
  const h = hub;
  return {
    close: async () => {
      h.subscribers.delete(subscriber);
      if (h.subscribers.size === 0 && hubs.get(url) === h) {
        hubs.delete(url);
        await h.close();
      }
    },
  };
}

function openHub(url: string): Hub {
  const subscribers = new Set<(orgId: string | undefined) => void>();
  let client: PgClient | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const tell = (orgId: string | undefined) => {
    for (const s of [...subscribers]) s(orgId);
  };

  const connect = async (): Promise<void> => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (msg) => {
      if (msg.channel === POLICY_CHANNEL && msg.payload) tell(msg.payload);
    });
    c.on('error', () => {
      void c.end().catch(() => undefined);
      if (client === c) client = undefined;
      if (!closed) retry = setTimeout(() => void connect().then(() => tell(undefined), () => undefined), 1000);
    });
    await c.connect();
    await c.query(`LISTEN ${POLICY_CHANNEL}`);
    if (closed) await c.end();
    else client = c;
  };
  return {
    subscribers,
    ready: connect(),
    close: async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
