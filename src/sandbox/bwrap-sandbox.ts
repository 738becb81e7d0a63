import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { onAgentEvents } from './agent-link.js';
import { AGENT_SCRIPT } from './agent-script.js';
import { argvScript, baseEnv, encodeArgs, INSIDE, outerArgs, sandboxPath } from './bwrap-args.js';
import { createCgroup } from './cgroup.js';
import type { SandboxCgroup } from './cgroup.js';
import { sandboxUnavailable } from './errors.js';
import { writeEtc } from './etc-files.js';
import { makeFifos, openFifoWriter } from './fifos.js';
import { startExec } from './exec-session.js';
import type { ExecContext } from './exec-session.js';
import type { LimitMechanism } from './host-support.js';
import type { SandboxIdentity } from './identity.js';
import { NATIVE_FILES } from './native.js';
import { OWNER_FILE, ownerStamp } from './reaper.js';
import { writeSandboxMaps } from './userns.js';
import { describeEnforcement, resolveLimits } from './limits.js';
import type { SandboxLimits } from './limits.js';
import type { ExecHandle, ExecRequest, Sandbox, SandboxInfo, SandboxSpec } from './types.js';

export interface BwrapHost {
  bwrap: string;
  sandboxesDir: string;
  nativeDir: string;
  identity: SandboxIdentity;
  mechanism: LimitMechanism;
  systemBinds: string[];
  nodeBin: string | undefined;
  alternativesDir: string | undefined;
}

const SLOT_BATCH = 4;

/** Descriptors bwrap gets from us. */
const FD = { args: 3, info: 4, seccomp: 5, usernsBlock: 6 } as const;
const READY_TIMEOUT_MS = 15_000;

/**
 * One live bubblewrap sandbox: a host directory (its /etc and control FIFOs),
 * a cgroup when the host has one, and a process tree of bwrap, the agent shell
 * and the relay. Commands run through the agent; `release` kills the tree and
 * removes everything.
 */
export class BwrapSandbox implements Sandbox {
  readonly provider = 'bubblewrap';
  readonly id: string;
  readonly info: SandboxInfo;
  readonly dir: string;
  /** Host pid of bwrap (outside the sandbox) and of the sandbox's pid 1, for measurement. */
  monitorPid = 0;
  initPid = 0;

  private readonly limits: SandboxLimits;
  private readonly ctlDir: string;
  private readonly env: Record<string, string>;
  private child?: ChildProcess;
  private cgroup?: SandboxCgroup;
  private requests?: Socket;
  private readonly watchers = new Map<string, { started(): void; done(status: number): void; lost(): void }>();
  private readonly freeSlots: number[] = [];
  private slotCount = 0;
  private execCounter = 0;
  private released?: Promise<void>;
  private exited = false;
  private stderrTail = '';

  private constructor(private readonly host: BwrapHost, spec: SandboxSpec) {
    this.id = randomBytes(8).toString('hex');
    this.dir = join(host.sandboxesDir, this.id);
    this.ctlDir = join(this.dir, 'ctl');
    this.limits = resolveLimits(spec.limits);
    this.env = baseEnv(sandboxPath(host.nodeBin));
    this.info = {
      id: this.id,
      ...(spec.label ? { label: spec.label } : {}),
      createdAt: new Date().toISOString(),
      limits: this.limits,
      enforcement: describeEnforcement(host.mechanism),
    };
  }

  get alive(): boolean {
    return !this.exited && this.released === undefined;
  }

  static async start(host: BwrapHost, spec: SandboxSpec): Promise<BwrapSandbox> {
    const sandbox = new BwrapSandbox(host, spec);
    try {
      await sandbox.boot(spec);
      return sandbox;
    } catch (error) {
      await sandbox.release();
      throw error;
    }
  }

  private async boot(spec: SandboxSpec): Promise<void> {
    await mkdir(this.host.sandboxesDir, { recursive: true, mode: 0o700 });
    // Private is the directory above (TAGBOX_HOME, or the launcher's 0700 runtime
    // directory): the launcher and the sandbox's own uid must read inside this one.
    await mkdir(this.dir, { mode: 0o755 });
    await chmod(this.dir, 0o755);
    // Who owns this sandbox: a later start removes it (and its cgroups) if we crash.
    await writeFile(join(this.dir, OWNER_FILE), ownerStamp(), { mode: 0o644 });
    // The sandbox's own user must read its /etc and control files: the
    // directory above them (0700) keeps everyone else on the host out.
    await mkdir(join(this.ctlDir, 'args'), { recursive: true, mode: 0o755 });
    await chmod(this.ctlDir, 0o755);
    await chmod(join(this.ctlDir, 'args'), 0o755);
    // Independent steps in parallel: creation time matters for one-shot `tagbox exec`.
    await Promise.all([
      writeEtc(join(this.dir, 'etc'), spec.caCertPem),
      writeFile(join(this.ctlDir, 'agent.sh'), AGENT_SCRIPT, { mode: 0o644 }),
      makeFifos([join(this.ctlDir, 'requests'), ...this.slotFifos(0, SLOT_BATCH)]),
    ]);
    this.cgroup = await createCgroup(this.host.mechanism, this.id, this.limits);
    this.slotCount = SLOT_BATCH;
    for (let slot = 0; slot < SLOT_BATCH; slot++) this.freeSlots.push(slot);

    const { identity } = this.host;
    const separate = identity.mode === 'separate';
    const rlimitsOnly = this.host.mechanism.kind === 'rlimits';
    const { options, command } = outerArgs({
      systemBinds: this.host.systemBinds,
      etcDir: join(this.dir, 'etc'),
      alternativesDir: this.host.alternativesDir,
      ctlDir: this.ctlDir,
      proxySocket: spec.proxySocket,
      nativeDir: this.host.nativeDir,
      limits: this.limits,
      dataKiB: rlimitsOnly ? Math.ceil(this.limits.memoryBytes / 1024) : 0,
      nproc: rlimitsOnly ? this.limits.processes : 0,
      path: this.env.PATH ?? '/usr/bin:/bin',
      identity,
      seccompFd: FD.seccomp,
      ...(spec.mounts?.length ? { mounts: spec.mounts } : {}),
      ...(separate ? { usernsBlockFd: FD.usernsBlock } : {}),
    });
    const seccomp = openSync(join(this.host.nativeDir, NATIVE_FILES.outerSeccomp), 'r');
    try {
      this.child = this.spawnBwrap(command, seccomp, separate);
    } finally {
      closeSync(seccomp);
    }
    const stdio = this.child.stdio as unknown as Array<Readable & Writable>;
    stdio[FD.args]!.end(encodeArgs(options));
    stdio[2]!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    this.child.on('exit', () => this.onExit());
    const ready = this.waitReady(stdio[1]!);
    ready.catch(() => undefined);
    this.initPid = await readInfoPid(stdio[FD.info]!);
    if (identity.mode === 'separate') await this.enterSeparate(identity, stdio[FD.usernsBlock]!);
    spec.onLaunched?.();
    await ready;
    this.requests = await openFifoWriter(join(this.ctlDir, 'requests'));
    this.requests.on('error', () => undefined);
  }

  /**
   * bwrap waits with its sandbox process made but not yet running: write the
   * user namespace's maps, put both processes in the cgroup (everything the
   * sandbox ever starts descends from them), then let it go.
   */
  private async enterSeparate(identity: Extract<SandboxIdentity, { mode: 'separate' }>, unblock: Writable): Promise<void> {
    if (this.initPid <= 0) return void unblock.destroy();
    try {
      await writeSandboxMaps(identity, this.initPid);
      for (const file of this.cgroup?.procsFiles ?? []) {
        await writeFile(file, `${this.monitorPid}\n`);
        await writeFile(file, `${this.initPid}\n`);
      }
    } catch (error) {
      // waitReady reports bwrap's exit with this tail.
      this.stderrTail += `\ncannot set up the sandbox's user namespace or cgroup: ${(error as Error).message}`;
      unblock.destroy();
      kill(this.monitorPid);
      return;
    }
    unblock.end('1');
  }

  /**
   * bwrap with an empty environment. In single-user mode a shell first joins
   * the cgroup, then execs bwrap; a sandbox with a uid of its own joins it
   * while bwrap waits (enterSeparate).
   */
  private spawnBwrap(command: string[], seccompFd: number, separate: boolean): ChildProcess {
    const bwrapArgs = ['--args', String(FD.args), '--info-fd', String(FD.info), '--', ...command];
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', seccompFd];
    if (separate) stdio.push('pipe');
    const files = separate ? [] : (this.cgroup?.procsFiles ?? []);
    const { identity } = this.host;
    // As root, bubblewrap runs as the unprivileged launcher user (node sets its groups to none).
    const as = identity.mode === 'separate' && identity.spawnAs ? { uid: identity.spawnAs.uid, gid: identity.spawnAs.gid } : {};
    const child = files.length === 0
      ? spawn(this.host.bwrap, bwrapArgs, { env: {}, stdio, ...as })
      : spawn('/bin/sh', ['-c', JOIN_AND_EXEC, 'tagbox-sandbox', ...files, '--', this.host.bwrap, ...bwrapArgs], { env: {}, stdio, ...as });
    this.monitorPid = child.pid ?? 0;
    child.on('error', () => undefined);
    return child;
  }

  private waitReady(agentOut: Readable): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (reason: string) => reject(sandboxUnavailable(`${reason}${this.stderrTail ? `: ${this.stderrTail.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
      const timer = setTimeout(() => fail('the sandbox did not become ready in time'), READY_TIMEOUT_MS);
      this.child?.once('error', (error) => {
        clearTimeout(timer);
        fail(`cannot run bubblewrap (${error.message})`);
      });
      this.child?.once('exit', (code) => {
        clearTimeout(timer);
        // Let the last of bwrap's stderr arrive before quoting it.
        setTimeout(() => fail(`bubblewrap exited (status ${code})`), 20);
      });
      onAgentEvents(agentOut, (event) => {
        switch (event.kind) {
          case 'ready':
            clearTimeout(timer);
            resolve();
            break;
          case 'fatal':
            clearTimeout(timer);
            fail(event.reason);
            break;
          case 'started':
            this.watchers.get(event.id)?.started();
            break;
          case 'done':
            this.watchers.get(event.id)?.done(event.status);
            break;
        }
      });
    });
  }

  exec(request: ExecRequest): ExecHandle {
    if (!this.alive) throw sandboxUnavailable(`sandbox ${this.id} is no longer running`);
    const id = `e${++this.execCounter}`;
    return startExec(this.context(), id, request);
  }

  private context(): ExecContext {
    return {
      limits: this.limits,
      baseEnv: this.env,
      acquireSlot: () => this.acquireSlot(),
      releaseSlot: (slot) => this.freeSlots.push(slot),
      writeArgs: async (id, options, argv) => {
        await writeFile(join(this.ctlDir, 'args', id), encodeArgs(options), { mode: 0o644 });
        await writeFile(join(this.ctlDir, 'args', `${id}.sh`), argvScript(argv), { mode: 0o644 });
      },
      removeArgs: (id) => {
        for (const name of [id, `${id}.sh`]) void unlink(join(this.ctlDir, 'args', name)).catch(() => undefined);
      },
      send: (line) => void this.requests?.write(`${line}\n`),
      watch: (id, handlers) => {
        if (this.exited) queueMicrotask(() => handlers.lost());
        this.watchers.set(id, handlers);
        return () => this.watchers.delete(id);
      },
      counters: async () => this.cgroup?.counters(),
      diskFull: () => this.diskFull(),
    };
  }

  private async acquireSlot() {
    let slot = this.freeSlots.shift();
    if (slot === undefined) {
      const first = this.slotCount;
      this.slotCount += SLOT_BATCH;
      await makeFifos(this.slotFifos(first, SLOT_BATCH));
      for (let n = first + 1; n < first + SLOT_BATCH; n++) this.freeSlots.push(n);
      slot = first;
    }
    const base = join(this.ctlDir, `slot${slot}`);
    return { slot, in: `${base}.in`, out: `${base}.out`, err: `${base}.err` };
  }

  private slotFifos(first: number, count: number): string[] {
    const paths: string[] = [];
    for (let slot = first; slot < first + count; slot++) {
      for (const end of ['in', 'out', 'err']) paths.push(join(this.ctlDir, `slot${slot}.${end}`));
    }
    return paths;
  }

  /** A full /workspace or /tmp (ENOSPC) is the disk limit at work; seen through the sandbox's root. */
  private async diskFull(): Promise<boolean> {
    if (!this.initPid) return false;
    for (const dir of [INSIDE.workspace, '/tmp']) {
      try {
        const stats = await statfs(`/proc/${this.initPid}/root${dir}`);
        if (stats.bavail === 0) return true;
      } catch {
        // the sandbox is gone or its root is not visible to us
      }
    }
    return false;
  }

  private onExit(): void {
    this.exited = true;
    for (const watcher of [...this.watchers.values()]) watcher.lost();
    void this.release();
  }

  release(): Promise<void> {
    this.released ??= this.teardown();
    return this.released;
  }

  /**
   * Kill pid 1: its pid namespace dies with it, and bwrap (still our child)
   * reaps it and exits. Then whatever the cgroup still holds; then the files.
   */
  private async teardown(): Promise<void> {
    this.requests?.destroy();
    const child = this.child;
    const running = child !== undefined && child.exitCode === null && child.signalCode === null;
    const exited = running ? new Promise((resolve) => child.once('exit', resolve)) : Promise.resolve();
    if (this.initPid > 0 && running) kill(this.initPid);
    if (running) {
      const timer = setTimeout(() => kill(this.monitorPid), this.initPid > 0 ? 2000 : 0);
      await exited;
      clearTimeout(timer);
    }
    await this.cgroup?.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function kill(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// Joins the sandbox's cgroups before anything else runs, so no process of it ever lives outside.
const JOIN_AND_EXEC = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"';

function readInfoPid(stream: Readable): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    // Without a pid bwrap failed; waitReady then reports why, from its stderr.
    stream.on('end', () => resolve(0));
    stream.on('error', () => resolve(0));
  });
}
