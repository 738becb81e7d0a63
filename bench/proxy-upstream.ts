/**
 * The benchmark's upstream, in its own process: a minimal HTTPS server on
 * loopback answering a small body with keep-alive. It counts requests that
 * carried the injected credential, so the bench can prove injection happened.
 * argv: certFile keyFile expectedAuthorization. Prints {"port":N} when ready;
 * answers "stats" on stdin with {"requests":N,"withCredential":N}.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

const [certFile, keyFile, expected] = process.argv.slice(2);
const body = Buffer.from('{"ok":true}\n');
let requests = 0;
let withCredential = 0;
let connections = 0;
const server = createServer({ cert: readFileSync(certFile!), key: readFileSync(keyFile!), ALPNProtocols: ['http/1.1'] }, (req, res) => {
  requests += 1;
  if (req.headers.authorization === expected) withCredential += 1;
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.on('secureConnection', () => (connections += 1));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.stdin.on('data', () => process.stdout.write(`${JSON.stringify({ requests, withCredential, connections })}\n`));
process.stdin.on('end', () => process.exit(0));
