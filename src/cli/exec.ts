import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { invalidInput } from '../errors.js';
import { homePaths, resolveHome } from '../home.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import { EXEC_GRANT_SOCKET, EXEC_SOCKET } from '../server/exec-protocol.js';
import type { GlobalOptions } from './context.js';
import { handOff } from './exec-hand-off.js';
import { collect } from './options.js';

export interface ExecOptions {
  bundles?: string;
  bundle: string[];
  connectTo: string[];
  upstreamCa?: string;
  timeout?: string;
  memory?: string;
  processes?: string;
  cpu?: string;
  output?: string;
  disk?: string;
  standalone?: boolean;
}

/**
 * `tagbox exec`: one command in a fresh sandbox whose only way out is a proxy
 * listener made for it alone, with the policy of the bundles given (none: nothing
 * is reachable). The path of a session in miniature: proxy listener -> sandbox -> command.
 */
export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command in a fresh sandbox whose egress is governed by bundles')
    .option('--bundles <file>', 'bundle file (YAML); without it nothing is reachable')
    .option('--bundle <name>', 'use only this bundle from the file (repeatable)', collect, [])
    .option('--connect-to <HOST:PORT:TOHOST:TOPORT>', 'send connections for HOST:PORT to TOHOST:TOPORT (repeatable)', collect, [])
    .option('--upstream-ca <file>', 'extra CA (PEM) trusted for upstream TLS')
    .option('--timeout <sec>', 'wall-clock limit for the command')
    .option('--memory <MiB>', 'memory limit')
    .option('--processes <n>', 'process limit')
    .option('--cpu <sec>', 'CPU-time limit per process')
    .option('--output <MiB>', 'limit on stdout + stderr')
    .option('--disk <MiB>', 'size of /workspace')
    .option('--standalone', 'run here even when `tagbox up` is running (by default the command is handed to it)')
    .argument('<cmd...>', 'the command and its arguments (after --)')
    .passThroughOptions()
    .action(async (argv: string[], opts: ExecOptions, command: Command) => {
      // A signal stops the command and tears the sandbox down before we exit
      // (as a shell reports it: 128 + the signal's number); nothing is left behind.
      const stop = new AbortController();
      let caught: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        caught ??= signal;
        stop.abort();
      };
      for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
      try {
        const code = await execCommand(argv, opts, command, stop.signal);
        process.exitCode = caught ? 128 + osConstants.signals[caught] : code;
      } finally {
        for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
      }
    });
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * With `tagbox up` running on this home, the command is handed to it (its
 * sandbox is built ahead, its proxy is warm: exec-service.ts), unless the flags
 * ask for what only a process of its own can give: another config, upstream
 * mappings or CA of its own. Otherwise, or when nothing answers, it runs here.
 */
async function execCommand(argv: string[], opts: ExecOptions, command: Command, stopped: AbortSignal): Promise<number> {
  const limits = parseLimits(opts);
  const globals = command.optsWithGlobals<GlobalOptions>();
  const ownProcess = opts.standalone || globals.config !== undefined || opts.connectTo.length > 0 || opts.upstreamCa !== undefined;
  if (!ownProcess) {
    if (opts.bundle.length && !opts.bundles) throw invalidInput('--bundle needs --bundles FILE');
    const run = homePaths(resolveHome(globals.home)).sockets;
    const sockets = { exec: join(run, EXEC_SOCKET), grant: join(run, EXEC_GRANT_SOCKET) };
    const handed = await handOff(sockets, { argv, ...(opts.bundles ? { bundles: { file: opts.bundles, names: opts.bundle } } : {}), limits }, stopped);
    if (handed) {
      dropStartedAuditWorker();
      return handed.exitCode;
    }
  }
  // The one-shot path's modules load only when it runs.
  return (await import('./exec-here.js')).execHere(argv, opts, limits, command, stopped);
}

/** bin/tagbox.js started exec's audit worker ahead (for a one-shot exec); a handed-off one has no use for it. */
function dropStartedAuditWorker(): void {
  const key = Symbol.for('tagbox.execAuditWorker');
  const holder = globalThis as Record<symbol, unknown>;
  const started = holder[key] as { terminate(): Promise<number> } | undefined;
  delete holder[key];
  void started?.terminate();
}

function parseLimits(opts: ExecOptions): Partial<SandboxLimits> {
  const MiB = 1024 * 1024;
  const num = (value: string | undefined, flag: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw invalidInput(`${flag}: expected a positive number, got "${value}"`);
    return n;
  };
  const limits: Partial<SandboxLimits> = {};
  const timeout = num(opts.timeout, '--timeout');
  if (timeout !== undefined) limits.wallMs = Math.round(timeout * 1000);
  const memory = num(opts.memory, '--memory');
  if (memory !== undefined) limits.memoryBytes = Math.round(memory * MiB);
  const processes = num(opts.processes, '--processes');
  if (processes !== undefined) limits.processes = Math.round(processes);
  const cpu = num(opts.cpu, '--cpu');
  if (cpu !== undefined) limits.cpuSeconds = Math.ceil(cpu);
  const output = num(opts.output, '--output');
  if (output !== undefined) limits.outputBytes = Math.round(output * MiB);
  const disk = num(opts.disk, '--disk');
  if (disk !== undefined) limits.diskBytes = Math.round(disk * MiB);
  return limits;
}
