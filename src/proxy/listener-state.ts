import type { EgressPolicy } from '../policy/compile.js';
import type { UsageContext } from './model-meter.js';

/**
 * What a listener knows about its callers: which session they are (the socket
 * they arrived on decides that; nothing they send can change it), whose
 * model use they are, and the policy in force. The policy is swapped atomically: a request reads it once,
 * at decision time, so in-flight requests finish on the policy they started with.
 */
let nextId = 0;

export class ListenerState {
  /** Unique in the process: upstream pools are keyed by it, so sessions never share a connection. */
  readonly id = nextId++;

  constructor(
    readonly session: string | undefined,
    private current: EgressPolicy,
    /** Whose model use this listener's requests are (set by the proxy daemon for a channel or DM); none: not metered. */
    readonly usage?: UsageContext,
  ) {}

  get policy(): EgressPolicy {
    return this.current;
  }

  setPolicy(policy: EgressPolicy): void {
    this.current = policy;
  }
}

/** Where an intercepted request came from: the CONNECT tunnel it travels in. */
export interface TunnelInfo {
  /** Normalised CONNECT host and port. */
  host: string;
  port: number;
  /** The TLS SNI the client sent (normalised), if any; undefined for plain HTTP in a tunnel. */
  sni?: string;
  tls: boolean;
}
