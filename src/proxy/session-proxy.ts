import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { ProxyRuntime } from './runtime.js';

/**
 * One session's proxy socket for `tagbox exec`, bound at once (the sandbox
 * binds it in when it starts) while the proxy behind it — its modules, the CA
 * key, the vault, the upstream settings — starts only when asked: by `start()`,
 * or by the first connection from the sandbox. Connections that arrive before
 * the proxy is up wait, accepted but unread (their bytes stay buffered), and
 * are handed to it once it listens on this socket. If it cannot start, every
 * connection is closed: nothing is reachable (default deny, fail closed).
 *
 * This file imports the proxy's types only, so that loading it loads nothing
 * of the proxy.
 */
export class SessionProxy {
  private runtime?: Promise<ProxyRuntime | undefined>;
  private handedOver = false;
  private failed = false;
  private readonly waiting: Socket[] = [];
  private error: unknown;

  private constructor(
    private readonly acceptor: Server,
    private readonly startRuntime: (acceptor: Server) => Promise<ProxyRuntime>,
    /** What stopped a proxy that a connection started (start()'s callers get it thrown instead). */
    private readonly onError: (error: unknown) => void,
  ) {
    acceptor.on('connection', (socket: Socket) => {
      if (this.handedOver) return; // the proxy's own listener has it
      if (this.failed) return void socket.destroy();
      socket.on('error', () => socket.destroy());
      this.waiting.push(socket);
      this.start().catch((error: unknown) => this.onError(error));
    });
  }

  /**
   * Binds `socketPath` (mode 0666: the sandbox may be a host uid of its own;
   * the directory the socket lives in keeps everyone else out).
   */
  static async bind(
    socketPath: string,
    /** Starts the proxy and has it listen on the acceptor (`proxy.listen({ acceptor }, ...)`). */
    startRuntime: (acceptor: Server) => Promise<ProxyRuntime>,
    onError: (error: unknown) => void,
  ): Promise<SessionProxy> {
    // As the proxy's own acceptors are made (agent-proxy.ts).
    const acceptor = createServer({ allowHalfOpen: true, noDelay: true });
    if (existsSync(socketPath)) unlinkSync(socketPath);
    await new Promise<void>((resolve, reject) => {
      acceptor.once('error', reject);
      acceptor.listen(socketPath, () => resolve());
    });
    acceptor.on('error', () => undefined);
    chmodSync(socketPath, 0o666);
    return new SessionProxy(acceptor, startRuntime, onError);
  }

  /** Whether the proxy was started (by `start()` or a connection). */
  get started(): boolean {
    return this.runtime !== undefined;
  }

  /** Starts the proxy if it is not started yet; resolves once it serves the socket. Throws what stopped it. */
  async start(): Promise<void> {
    this.runtime ??= this.boot();
    if (!(await this.runtime)) throw this.error;
  }

  private async boot(): Promise<ProxyRuntime | undefined> {
    let runtime: ProxyRuntime;
    try {
      runtime = await this.startRuntime(this.acceptor);
    } catch (error) {
      this.failed = true;
      this.error = error;
      for (const socket of this.waiting.splice(0)) socket.destroy();
      return undefined;
    }
    this.handedOver = true;
    for (const socket of this.waiting.splice(0)) {
      if (!socket.destroyed) this.acceptor.emit('connection', socket);
    }
    return runtime;
  }

  /** Closes the socket and, if it started, the proxy (flushing its audit events). */
  async close(): Promise<void> {
    const runtime = await this.runtime?.catch(() => undefined);
    if (runtime) await runtime.close(); // its listener closes the acceptor
    else await new Promise<void>((resolve) => this.acceptor.close(() => resolve()));
    for (const socket of this.waiting.splice(0)) socket.destroy();
  }
}
