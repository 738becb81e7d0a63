import type { Readable } from 'node:stream';
import type { LimitName, SandboxLimits } from './limits.js';

/**
 * The sandbox seam. A provider turns a spec into an isolated place to run
 * commands; the bubblewrap provider is the local one, a Kubernetes provider can
 * implement the same three verbs later. Callers never see how isolation is done.
 */
export interface SandboxProvider {
  readonly name: string;
  /** Builds a live sandbox. Throws a `sandbox_unavailable` TagboxError when it cannot. */
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Starts one command in a live sandbox; output streams as it is produced. */
  exec(sandbox: Sandbox, request: ExecRequest): ExecHandle;
  /** Kills every process of the sandbox and deletes its files. Idempotent. */
  release(sandbox: Sandbox): Promise<void>;
  /**
   * Where the Agent Proxy should listen for the sandbox named `name` so that the
   * provider can bind that socket into it (the one place the sandbox can reach).
   */
  proxySocketPath(name: string): string;
  /**
   * A host directory for files that sandboxes mount read-only (`SandboxSpec.mounts`),
   * where the provider can reach them by path (as root, bubblewrap runs as the
   * launcher user, which may not enter TAGBOX_HOME). Created on first use.
   */
  mountSourceDir(name: string): string;
}

export interface SandboxSpec {
  /** Host path of the session's Agent Proxy Unix socket: the sandbox's only way out. */
  proxySocket: string;
  /** The deployment CA certificate (PEM) that commands inside must trust. */
  caCertPem: string;
  /** Overrides of the default limits. */
  limits?: Partial<SandboxLimits>;
  /** A label for logs and metadata (e.g. the session id); never used as a path. */
  label?: string;
  /**
   * Host directories or files shown read-only inside, under /opt/tagbox (an
   * engine's binary, a session's plugins). Never writable, never elsewhere.
   */
  mounts?: ReadOnlyMount[];
  /**
   * Called once the sandbox's own processes run on their own (for bubblewrap:
   * started, user namespace and cgroup set up), before it is ready: from then
   * on the caller can busy its event loop without holding the set-up back.
   */
  onLaunched?: () => void;
}

export interface ReadOnlyMount {
  /** Absolute host path. */
  source: string;
  /** Absolute path inside the sandbox, under /opt/tagbox/. */
  target: string;
}

export interface Sandbox {
  readonly id: string;
  readonly provider: string;
  readonly info: SandboxInfo;
  /** False once the sandbox was released or died on its own. */
  readonly alive: boolean;
}

/** What the sandbox reports about itself: which limits hold and how. */
export interface SandboxInfo {
  id: string;
  label?: string;
  createdAt: string;
  limits: SandboxLimits;
  /** One entry per limit: the mechanism that enforces it. */
  enforcement: Record<LimitName, string>;
}

export interface ExecRequest {
  argv: string[];
  /** Working directory inside the sandbox; default `/workspace`. */
  cwd?: string;
  /** Added to (and overriding) the sandbox's base environment. */
  env?: Record<string, string>;
  /** Data or a stream for the command's stdin; none means /dev/null. */
  stdin?: string | Uint8Array | Readable;
  /** Wall-clock limit for this command; default the sandbox's `wallMs`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecHandle {
  /** The command's output. Consume both (or `resume()` them): they apply back-pressure. */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles after the command and everything it started have ended and both streams have ended. */
  readonly result: Promise<ExecResult>;
}

export interface ExecResult {
  /** The command's exit status; 128+N when it died of signal N (as a shell reports it). */
  exitCode: number;
  /** The limit that stopped the command, if one did; also said on stderr. */
  limit?: LimitName;
  /** True when the caller's AbortSignal stopped the command. */
  cancelled?: boolean;
  durationMs: number;
}
