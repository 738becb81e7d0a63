import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentProxy } from './agent-proxy.js';

/** `--metrics HOST:PORT`: Prometheus text exposition of one proxy process. */
export async function serveMetrics(proxy: AgentProxy, at: { host: string; port: number }): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    const { hits, misses, size } = proxy.leaves.stats;
    proxy.metrics.registry
      .metrics()
      .then((text) => {
        const leaf = `# HELP tagbox_proxy_leaf_cache Leaf certificate cache\n# TYPE tagbox_proxy_leaf_cache gauge\ntagbox_proxy_leaf_cache{stat="hits"} ${hits}\ntagbox_proxy_leaf_cache{stat="misses"} ${misses}\ntagbox_proxy_leaf_cache{stat="size"} ${size}\n`;
        res.writeHead(200, { 'content-type': proxy.metrics.registry.contentType });
        res.end(text + leaf);
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
