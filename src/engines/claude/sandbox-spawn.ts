import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { ExecHandle, ExecRequest } from '../../sandbox/types.js';

/** What the SDK's spawn hook is given (SpawnOptions of claude-agent-sdk). */
export interface EngineSpawnOptions {
  command: string;
  args: string[];
  cwd?: string;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
}

/**
 * The engine process, run inside the session's sandbox through its exec
 * channel: the SDK on the host talks to it over stdin/stdout, so the process
 * — and whatever a prompt injection makes it do — lives in the sandbox.
 * Satisfies the SDK's SpawnedProcess interface.
 */
export class SandboxedProcess extends EventEmitter {
  readonly stdin = new PassThrough();
  readonly stdout: Readable;
  exitCode: number | null = null;
  killed = false;
  private readonly abort = new AbortController();
  private stderrTail = '';

  constructor(exec: (request: ExecRequest) => ExecHandle, options: EngineSpawnOptions, extra: { timeoutMs: number; env: Record<string, string> }) {
    super();
    const handle = exec({
      argv: [options.command, ...options.args],
      cwd: options.cwd ?? '/workspace',
      env: { ...sandboxEnv(options.env), ...extra.env },
      stdin: this.stdin,
      signal: this.abort.signal,
      timeoutMs: extra.timeoutMs,
    });
    this.stdout = handle.stdout;
    handle.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-4000);
    });
    handle.result.then(
      (result) => {
        this.exitCode = result.exitCode;
        this.emit('exit', result.exitCode, null);
      },
      (error: unknown) => this.emit('error', error instanceof Error ? error : new Error(String(error))),
    );
    options.signal.addEventListener('abort', () => this.kill('SIGKILL'), { once: true });
  }

  /** The last of what the process wrote on stderr (for a turn that failed). */
  get stderr(): string {
    return this.stderrTail;
  }

  kill(_signal: NodeJS.Signals): boolean {
    // The sandbox's exec channel stops the command and everything it started.
    this.killed = true;
    this.abort.abort();
    return true;
  }
}

/**
 * The SDK's environment for the process, minus what the sandbox decides
 * itself (PATH, HOME, the proxy and CA variables of its base environment).
 * Only this engine's own variables are passed — never the host's.
 */
function sandboxEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || OWNED_BY_SANDBOX.has(key) || /PROXY$/i.test(key)) continue;
    out[key] = value;
  }
  return out;
}

const OWNED_BY_SANDBOX = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'NO_PROXY', 'no_proxy']);
