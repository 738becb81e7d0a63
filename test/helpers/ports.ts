import { createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 at the moment of asking (the OS picks it; the probe closes before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
