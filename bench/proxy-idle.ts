/**
 * Memory per 1,000 idle tunnels: the RSS of the proxy's process tree before
 * and after bench/proxy-idle-client.ts holds COUNT tunnels open through it
 * (TLS established), scaled to 1,000. One measurement per proxy, before the
 * load runs (a Node heap full of a load's garbage shrinks and grows on its own
 * terms), after a warm-up pass of WARM tunnels opened and closed, so that code
 * paths and caches (the leaf) are in place and only the tunnels are counted.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { nextLine, runNode } from './node-children.js';
import { rssOfTree } from './proc-cpu.js';

export interface IdleResult {
  opened: number;
  failed: number;
  firstError?: string;
  /** Opening them all, ms. */
  ms: number;
  /** RSS delta of the proxy's process tree per 1,000 open tunnels, bytes. */
  perThousand: number;
  /** TLS connections the upstream accepted while the tunnels were opened (a proxy that dials eagerly, or a tunnel). */
  upstreamConnections?: number;
}

export async function idleMemory(
  children: ChildProcess[],
  proxyPid: number,
  spec: { proxyPort: number; target: string; caFile: string; count: number },
  /** The upstream's count of TLS connections accepted so far. */
  upstreamConnections: () => Promise<number>,
): Promise<IdleResult> {
  await holdTunnels(children, { ...spec, count: Math.min(WARM, spec.count) }, async () => undefined);
  const before = rssOfTree(proxyPid);
  const dialed = await upstreamConnections();
  return holdTunnels(children, spec, async (opened) => {
    // Let the proxy finish what the last handshakes started.
    await sleep(1500);
    const after = rssOfTree(proxyPid);
    return { ...opened, perThousand: opened.opened > 0 ? ((after - before) * 1000) / opened.opened : NaN, upstreamConnections: (await upstreamConnections()) - dialed };
  });
}

const WARM = 50;

/** Opens the tunnels in a client process, calls `measure` while they are held, then closes them. */
async function holdTunnels<T>(
  children: ChildProcess[],
  spec: { proxyPort: number; target: string; caFile: string; count: number },
  measure: (opened: Omit<IdleResult, 'perThousand'>) => Promise<T>,
): Promise<T> {
  const client = runNode(children, 'proxy-idle-client.ts', [JSON.stringify({ ...spec, concurrency: 16, timeoutMs: 90_000 })]);
  try {
    return await measure(JSON.parse(await nextLine(client, 120_000)) as Omit<IdleResult, 'perThousand'>);
  } finally {
    client.stdin!.end();
    await Promise.race([new Promise((resolve) => client.once('exit', resolve)), sleep(10_000)]);
    // The proxy closes its side (and its upstream connections) before the next measurement.
    await sleep(1000);
  }
}
