import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { RELAY_BINARY } from '../../src/sandbox/native.js';
import { freePort } from '../helpers/ports.js';

export { freePort };

/** The built relay (native/build/tagbox-relay) running on the host, listening on 127.0.0.1:port. */
export interface Relay {
  child: ChildProcess;
  pid: number;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}


/** Is something listening on 127.0.0.1:port? Read as the agent does, from /proc/net/tcp. */
export function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === local && fields[3] === '0A';
  });
}

export interface RelayOptions {
  maxConnections?: number;
  /** `ulimit -n` for the relay, and descriptors it inherits already open (to reach EMFILE). */
  fileLimit?: number;
  inheritFds?: number[];
}

export async function startRelay(socketPath: string, options: RelayOptions = {}): Promise<Relay> {
  const port = await freePort();
  const args = [`127.0.0.1:${port}`, socketPath, ...(options.maxConnections ? [String(options.maxConnections)] : [])];
  const stdio: StdioOptions = ['ignore', 'ignore', 'pipe', ...(options.inheritFds ?? [])];
  const child = options.fileLimit
    ? spawn('/bin/sh', ['-c', `ulimit -n ${options.fileLimit} && exec "$0" "$@"`, RELAY_BINARY, ...args], { stdio })
    : spawn(RELAY_BINARY, args, { stdio });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => listening(port) || child.exitCode !== null, `the relay to listen on ${port}`);
  if (child.exitCode !== null) throw new Error(`the relay exited ${child.exitCode}: ${stderr}`);
  return {
    child,
    pid: child.pid ?? 0,
    port,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A Unix-socket server; `connections` holds its live server-side sockets. */
export interface UnixServer {
  server: Server;
  connections: Set<Socket>;
  /** Most connections open at once. */
  peak: number;
  close(): Promise<void>;
}

export async function startUnixServer(path: string, onConnection: (socket: Socket) => void, options: { allowHalfOpen?: boolean } = {}): Promise<UnixServer> {
  const connections = new Set<Socket>();
  const server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  const result: UnixServer = {
    server,
    connections,
    peak: 0,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  server.on('connection', (socket) => {
    connections.add(socket);
    result.peak = Math.max(result.peak, connections.size);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  // A deep backlog: a burst of the relay's connects must not find it full.
  await new Promise<void>((resolve) => server.listen({ path, backlog: 4096 }, resolve));
  return result;
}

/** Echoes every byte, with back-pressure (pipe). */
export const echo = (socket: Socket): void => void socket.pipe(socket);

export function connectClient(relay: Relay, options: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: relay.port, allowHalfOpen: options.allowHalfOpen ?? false });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes `data` and collects exactly that many bytes back (an echo round trip). */
export function roundTrip(socket: Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= data.length) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = () => reject(new Error(`closed after ${length} of ${data.length} bytes`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(data);
  });
}

/** How a client connection ended: the bytes it received, whether it saw EOF, and any error. */
export interface Ending {
  received: Buffer;
  ended: boolean;
  error: string | undefined;
}

export function ending(socket: Socket): Promise<Ending> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ended = false;
    let error: string | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => (ended = true));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => resolve({ received: Buffer.concat(chunks), ended, error }));
  });
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The relay's resident memory in KiB (VmRSS of /proc/<pid>/status). */
export function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
export const threads = (pid: number): string[] => readdirSync(`/proc/${pid}/task`);

/** Pids whose parent is `pid`, from /proc/*\/stat (works without CONFIG_PROC_CHILDREN). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** CPU time (user + system) the process has used, in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Bytes waiting in the kernel on the relay's side of its client connections, by client port: unread (rx) and unsent (tx). */
export function relaySideQueues(relayPort: number): Map<number, { rx: number; tx: number }> {
  const local = `0100007F:${relayPort.toString(16).toUpperCase().padStart(4, '0')}`;
  const queues = new Map<number, { rx: number; tx: number }>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== local || fields[3] === '0A') continue;
    const [tx = '0', rx = '0'] = (fields[4] ?? '').split(':');
    queues.set(parseInt((fields[2] ?? '').split(':')[1] ?? '0', 16), { rx: parseInt(rx, 16), tx: parseInt(tx, 16) });
  }
  return queues;
}
