import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a scrape reads: one process's registry, or a cluster's, aggregated (proxy-workers.ts). */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

/** `--metrics HOST:PORT`: Prometheus text exposition of the proxy (all its workers together). */
export async function serveMetrics(source: MetricsSource, at: { host: string; port: number }): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    source
      .metrics()
      .then((text) => {
        res.writeHead(200, { 'content-type': source.contentType });
        res.end(text);
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
