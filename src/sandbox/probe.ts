import { chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { createBubblewrapProvider } from './bubblewrap-provider.js';
import { describeIdentity, type SandboxIdentity } from './identity.js';
import { runOnce } from './run.js';

/**
 * What a real sandbox on this host looks like from inside, for `tagbox doctor`:
 * a throwaway sandbox runs one command that reports its uid, its seccomp state
 * and whether host-global /proc files would open for writing (opened for
 * appending, never written).
 */
export interface ConfinementReport {
  identity: SandboxIdentity;
  identityLine: string;
  uid: number;
  seccompFilters: number;
  writableProc: string[];
}

const PROBED = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sysrq-trigger', '/proc/sys/vm/drop_caches'];

const SCRIPT = [
  'id -u',
  'sed -n "s/^Seccomp_filters:[[:space:]]*//p" /proc/self/status',
  `for f in ${PROBED.join(' ')}; do if ( : >> "$f" ) 2>/dev/null; then echo "writable $f"; fi; done`,
].join('\n');

export async function probeConfinement(home: string): Promise<ConfinementReport> {
  const provider = await createBubblewrapProvider({ home });
  const socketPath = provider.proxySocketPath(`doctor-${process.pid}`);
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  chmodSync(socketPath, 0o666);
  try {
    const result = await runOnce(provider, { proxySocket: socketPath, caCertPem: '', label: 'doctor' }, { argv: ['/bin/sh', '-c', SCRIPT], timeoutMs: 20_000 });
    const [uid = '', filters = '', ...rest] = result.stdout.trim().split('\n');
    return {
      identity: provider.identity,
      identityLine: describeIdentity(provider.identity),
      uid: Number(uid),
      seccompFilters: Number(filters) || 0,
      writableProc: rest.filter((l) => l.startsWith('writable ')).map((l) => l.slice('writable '.length)),
    };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
