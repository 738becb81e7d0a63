/**
 * The proxy bench's idle-tunnel client, in its own process: opens COUNT
 * CONNECT tunnels through a proxy, completes TLS in each (with the proxy's
 * leaf where it intercepts, end to end with the upstream where it tunnels),
 * then holds them idle until stdin ends. At most CONCURRENCY opening at once;
 * every step has a deadline.
 *
 * argv[2]: JSON IdleSpec. Prints one JSON line {opened, failed, firstError, ms} once all were tried.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

interface IdleSpec {
  proxyPort: number;
  /** The CONNECT target, HOST:PORT; TLS is verified as HOST. */
  target: string;
  caFile: string;
  count: number;
  concurrency: number;
  /** Deadline for the whole opening. */
  timeoutMs: number;
}

const spec = JSON.parse(process.argv[2]!) as IdleSpec;
const ca = readFileSync(spec.caFile, 'utf8');
const servername = spec.target.slice(0, spec.target.lastIndexOf(':'));
const held: Socket[] = [];
let failed = 0;
let firstError: string | undefined;

function openOne(): Promise<void> {
  return new Promise((resolve, reject) => {
    const raw = connect({ host: '127.0.0.1', port: spec.proxyPort });
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error('tunnel not established within 10 s'));
    }, 10_000);
    raw.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    raw.once('connect', () => raw.write(`CONNECT ${spec.target} HTTP/1.1\r\nHost: ${spec.target}\r\n\r\n`));
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        clearTimeout(timer);
        raw.destroy();
        return reject(new Error(`CONNECT answered ${head.split('\r\n')[0]}`));
      }
      const tls = tlsConnect({ socket: raw, servername, ca, ALPNProtocols: ['http/1.1'] });
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        held.push(tls);
        resolve();
      });
      tls.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    };
    raw.on('data', onData);
  });
}

const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: spec.concurrency }, async () => {
    while (next < spec.count && Date.now() - started < spec.timeoutMs) {
      next += 1;
      try {
        await openOne();
      } catch (error) {
        failed += 1;
        firstError ??= (error as Error).message;
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify({ opened: held.length, failed, firstError, ms: Date.now() - started })}\n`);
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => {
  for (const s of held) s.destroy();
  process.exit(0);
});
