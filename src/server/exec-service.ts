import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { z } from 'zod';
import type { AuditLog } from '../audit/log.js';
import { describeError, isTagboxError } from '../errors.js';
import type { Logger } from '../log.js';
import { EXIT_SANDBOX_UNAVAILABLE, isSandboxUnavailable } from '../sandbox/errors.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import { runInSandbox } from '../sandbox/run.js';
import type { Sandbox, SandboxProvider } from '../sandbox/types.js';
import { isRootOrSelf, peerCredentials, type PeerCredentials } from '../system/peercred.js';
import { encodeFrame, FRAME, FrameReader, type ExecDone, type FrameKind } from './exec-protocol.js';

/**
 * The Agent Proxy as exec needs it: a listener that reaches nothing, then the
 * bundles the client granted the proxy directly (the server only passes the
 * grant's name on: it never says what a listener may reach).
 */
export interface ExecProxy {
  openExecListener(session: string, socketPath: string): Promise<void>;
  /** Resolves to the granted bundles' names. */
  applyGrant(session: string, grant: string): Promise<string[]>;
  closeListener(session: string): Promise<boolean>;
  caCert(): Promise<string>;
}

export interface ExecServiceOptions {
  /** Where to listen: the home's run directory (only its owner, or root, reaches it). */
  socketPath: string;
  provider: SandboxProvider;
  proxy: ExecProxy;
  audit: AuditLog;
  logger: Logger;
}

const REQUEST_TIMEOUT_MS = 10_000;

const positive = z.number().int().positive();
const requestSchema = z
  .object({
    argv: z.array(z.string().max(64 * 1024)).min(1).max(4096),
    grant: z.string().min(1).max(128).optional(),
    limits: z
      .object({ wallMs: positive, memoryBytes: positive, processes: positive, cpuSeconds: positive, outputBytes: positive, diskBytes: positive })
      .partial()
      .strict()
      .default({}),
    stdin: z.boolean().default(false),
  })
  .strict();
type ValidRequest = z.output<typeof requestSchema>;

/** A sandbox built ahead of its exec, behind a listener that reaches nothing until the exec's bundles are set. */
interface Prepared {
  session: string;
  sandbox: Sandbox;
}

/**
 * `tagbox exec` handed to the running `tagbox up` (issue 15): the same command
 * in a fresh sandbox whose only way out is a proxy listener with the policy of
 * the bundles the client granted the proxy, audited as the one-shot exec audits it, without the one-shot's
 * start-up (node modules, the store, the proxy, the sandbox's build). Who may
 * ask: the server's own uid and root, checked by SO_PEERCRED on every
 * connection — what those can do by hand anyway (they hold the home). A
 * sandbox is never used twice: the one built ahead is taken by one exec and
 * released after it.
 */
export class ExecService {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();
  private prepared: Promise<Prepared | undefined> | undefined;
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: ExecServiceOptions) {}

  async listen(): Promise<void> {
    const { socketPath } = this.options;
    rmSync(socketPath, { force: true });
    const server = createServer((socket) => {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
      this.track(this.serve(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    this.server = server;
    this.prepareNext();
  }

  /** Stops taking commands; the running ones are stopped (their clients see the connection close), and every sandbox goes. */
  async close(): Promise<void> {
    this.closed = true;
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    for (const socket of this.connections) socket.destroy();
    await closed;
    rmSync(this.options.socketPath, { force: true });
    await Promise.allSettled([...this.running]);
    const prepared = await this.prepared?.catch(() => undefined);
    if (prepared) await this.discard(prepared);
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }

  private async serve(socket: Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    let peer: PeerCredentials;
    try {
      peer = peerCredentials(socket);
    } catch (error) {
      this.options.logger.warn({ err: describeError(error) }, 'exec hand-off: cannot read the peer of a connection; refused');
      return void socket.destroy();
    }
    if (!isRootOrSelf(peer)) {
      this.options.logger.warn({ peer }, 'exec hand-off refused: the peer is neither root nor the user Tagbox runs as');
      return void finish(socket, { exitCode: 1, error: 'refused: only root and the user Tagbox runs as may hand it a command' });
    }
    const connection = new ExecConnection(socket);
    let request: ValidRequest;
    try {
      request = requestSchema.parse(await connection.request(REQUEST_TIMEOUT_MS));
    } catch (error) {
      return void finish(socket, { exitCode: 2, error: `exec hand-off: bad request: ${describeError(error)}` });
    }
    try {
      finish(socket, await this.run(request, connection, peer));
    } catch (error) {
      const exitCode = isSandboxUnavailable(error) ? EXIT_SANDBOX_UNAVAILABLE : isTagboxError(error) ? error.exitCode : 1;
      finish(socket, { exitCode, error: describeError(error) });
    }
  }

  private async run(request: ValidRequest, connection: ExecConnection, peer: PeerCredentials): Promise<ExecDone> {
    const { wallMs, ...buildLimits } = request.limits;
    const { target, bundles } = await this.sandboxFor(buildLimits, request.grant);
    const { session, sandbox } = target;
    try {
      await this.options.audit.append({
        type: 'sandbox',
        action: 'create',
        session,
        actor: 'cli',
        command: request.argv[0] ?? '',
        bundles,
        sandbox: sandbox.id,
        provider: sandbox.provider,
        via: 'tagbox up',
        peer: { pid: peer.pid, uid: peer.uid },
      });
      const result = await runInSandbox(
        this.options.provider,
        sandbox,
        { argv: request.argv, stdin: request.stdin ? connection.stdin : '', signal: connection.stopped, ...(wallMs ? { timeoutMs: wallMs } : {}) },
        { stdout: connection.output(FRAME.STDOUT), stderr: connection.output(FRAME.STDERR) },
      );
      await this.options.audit.append({ type: 'sandbox', action: 'release', session, exitCode: result.exitCode, ...(result.limit ? { limit: result.limit } : {}), durationMs: result.durationMs });
      return { exitCode: result.exitCode };
    } finally {
      // After the answer: the client need not wait for the teardown. The next sandbox is
      // built once this one's command is done: built beside it, it slowed the command down.
      setImmediate(() => {
        this.track(this.discard(target));
        this.prepareNext();
      });
    }
  }

  /**
   * The sandbox built ahead when it fits (default limits), else a new one; either
   * way its listener gets the client's grant (if any) before the command runs.
   */
  private async sandboxFor(limits: Partial<SandboxLimits>, grant: string | undefined): Promise<{ target: Prepared; bundles: string[] }> {
    const ahead = Object.keys(limits).length === 0 ? await this.takePrepared() : undefined;
    if (ahead) {
      try {
        return { target: ahead, bundles: await this.applyGrant(ahead, grant) };
      } catch (error) {
        this.track(this.discard(ahead));
        // The proxy restarted since it was built (its listeners went with it): build anew. Anything else is the client's to hear.
        if (!(isTagboxError(error) && error.code === 'no_listener')) throw error;
        this.options.logger.warn({ session: ahead.session }, 'exec hand-off: the sandbox built ahead lost its listener; building another');
      }
    }
    const built = await this.build(limits);
    try {
      return { target: built, bundles: await this.applyGrant(built, grant) };
    } catch (error) {
      // Nothing ran in it: it goes, and the client hears why (an unknown or expired grant).
      this.track(this.discard(built));
      throw error;
    }
  }

  private async applyGrant(target: Prepared, grant: string | undefined): Promise<string[]> {
    return grant ? this.options.proxy.applyGrant(target.session, grant) : [];
  }

  /** The sandbox built ahead (undefined if its build failed); the next is built after this one's command. */
  private takePrepared(): Promise<Prepared | undefined> | undefined {
    const next = this.prepared;
    this.prepared = undefined;
    return next;
  }

  private prepareNext(): void {
    if (this.closed || this.prepared) return;
    const building = this.build({});
    building.catch((error: unknown) => this.options.logger.warn({ err: describeError(error) }, 'exec hand-off: could not build a sandbox ahead'));
    this.prepared = building.catch(() => undefined);
  }

  /** A listener that reaches nothing yet, and a fresh sandbox bound to it. */
  private async build(limits: Partial<SandboxLimits>): Promise<Prepared> {
    const session = `exec-${randomBytes(6).toString('hex')}`;
    const socketPath = this.options.provider.proxySocketPath(session);
    await this.options.proxy.openExecListener(session, socketPath);
    try {
      const sandbox = await this.options.provider.create({ proxySocket: socketPath, caCertPem: await this.options.proxy.caCert(), limits, label: session });
      return { session, sandbox };
    } catch (error) {
      await this.options.proxy.closeListener(session).catch(() => false);
      throw error;
    }
  }

  private async discard(prepared: Prepared): Promise<void> {
    await this.options.provider.release(prepared.sandbox).catch((error: unknown) => this.options.logger.warn({ err: describeError(error) }, 'exec hand-off: releasing a sandbox failed'));
    await this.options.proxy.closeListener(prepared.session).catch(() => false);
  }
}

/** Ends the exchange with its last frame. */
function finish(socket: Socket, done: ExecDone): void {
  if (socket.destroyed) return;
  socket.end(encodeFrame(FRAME.DONE, JSON.stringify(done)));
  // Read on to the client's end: a socket nobody reads never sees it, and stays open (holding close() up).
  socket.resume();
}

/**
 * One client's frames: its request, then its stdin and signals while the
 * command runs. A closed connection (the client killed) stops the command.
 */
class ExecConnection {
  readonly stdin = new PassThrough();
  private readonly abort = new AbortController();
  private readonly reader = new FrameReader();
  private gotRequest: ((payload: Buffer) => void) | undefined;
  private failRequest: ((error: Error) => void) | undefined;
  private hasRequest = false;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      this.failRequest?.(new Error('the client closed the connection'));
      this.abort.abort();
      this.stdin.end();
    });
    this.stdin.on('drain', () => socket.resume());
  }

  get stopped(): AbortSignal {
    return this.abort.signal;
  }

  request(timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no request within ${timeoutMs / 1000} s`)), timeoutMs);
      this.gotRequest = (payload) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(payload.toString('utf8')));
        } catch {
          reject(new Error('the request is not JSON'));
        }
      };
      this.failRequest = (error) => {
        clearTimeout(timer);
        reject(error);
      };
    });
  }

  /** Where the command's stdout or stderr goes: frames of that kind, with the socket's back-pressure. */
  output(kind: FrameKind): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.socket.destroyed) return callback();
        this.socket.write(encodeFrame(kind, chunk), () => callback());
      },
    });
  }

  private receive(chunk: Buffer): void {
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.failRequest?.(error as Error);
      this.abort.abort();
      return void this.socket.destroy();
    }
    for (const frame of frames) {
      if (!this.hasRequest) {
        if (frame.kind !== FRAME.REQUEST) {
          this.failRequest?.(new Error('the first frame must be the request'));
          return void this.socket.destroy();
        }
        this.hasRequest = true;
        this.gotRequest?.(frame.payload);
        continue;
      }
      if (frame.kind === FRAME.STDIN) {
        if (!this.stdin.writableEnded && !this.stdin.write(frame.payload)) this.socket.pause();
      } else if (frame.kind === FRAME.STDIN_END) this.stdin.end();
      else if (frame.kind === FRAME.SIGNAL) this.abort.abort();
      else return void this.socket.destroy(); // a server's frame kind from the client: nothing past it is trusted
    }
  }
}
