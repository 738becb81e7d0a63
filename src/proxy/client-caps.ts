/**
 * What each client holds, so that no one client can starve the others: open
 * connections and open CONNECT tunnels, counted per client (a session's
 * listener; on a TCP listener, each remote address) and in total. A client
 * may hold at most its own cap, and never more than a quarter of a global
 * cap, so one flooder always leaves room for everyone else. Counting is a few
 * map operations per connection, nothing per request.
 */
export interface CapLimits {
  maxConnections: number;
  maxConnectionsPerClient: number;
  maxTunnels: number;
  maxTunnelsPerClient: number;
}

/** No single client may hold more than this share of a global cap. */
export const CLIENT_SHARE = 4;

export function clientCap(perClient: number, global: number): number {
  return Math.max(1, Math.min(perClient, Math.floor(global / CLIENT_SHARE)));
}

interface Held {
  connections: number;
  tunnels: number;
}

export type Acquired = { ok: true; release: () => void } | { ok: false; reason: string };

export class ClientCaps {
  private connections = 0;
  private tunnels = 0;
  private readonly byClient = new Map<string, Held>();
  readonly perClient: { connections: number; tunnels: number };

  constructor(readonly limits: CapLimits) {
    this.perClient = {
      connections: clientCap(limits.maxConnectionsPerClient, limits.maxConnections),
      tunnels: clientCap(limits.maxTunnelsPerClient, limits.maxTunnels),
    };
  }

  openConnection(client: string): Acquired {
    const held = this.byClient.get(client);
    if ((held?.connections ?? 0) >= this.perClient.connections) return { ok: false, reason: `too many open connections for this session (${this.perClient.connections})` };
    if (this.connections >= this.limits.maxConnections) return { ok: false, reason: `too many open connections (${this.limits.maxConnections})` };
    return this.take(client, 'connections');
  }

  openTunnel(client: string): Acquired {
    const held = this.byClient.get(client);
    if ((held?.tunnels ?? 0) >= this.perClient.tunnels) return { ok: false, reason: `too many open tunnels for this session (${this.perClient.tunnels})` };
    if (this.tunnels >= this.limits.maxTunnels) return { ok: false, reason: `too many open tunnels (${this.limits.maxTunnels})` };
    return this.take(client, 'tunnels');
  }

  usage(): { connections: number; tunnels: number; clients: Record<string, Held> } {
    return { connections: this.connections, tunnels: this.tunnels, clients: Object.fromEntries([...this.byClient].map(([k, v]) => [k, { ...v }])) };
  }

  private take(client: string, kind: keyof Held): Acquired {
    let held = this.byClient.get(client);
    if (!held) this.byClient.set(client, (held = { connections: 0, tunnels: 0 }));
    held[kind] += 1;
    this[kind] += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held[kind] -= 1;
        this[kind] -= 1;
        if (held.connections === 0 && held.tunnels === 0 && this.byClient.get(client) === held) this.byClient.delete(client);
      },
    };
  }
}
