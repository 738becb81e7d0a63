import { constants as osConstants } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { describeError, invalidInput } from '../errors.js';
import { ensureHome, homePaths, resolveHome } from '../home.js';
import { deploymentCaCertificate } from '../proxy/ca.js';
import { SessionProxy } from '../proxy/session-proxy.js';
import { createBubblewrapProvider } from '../sandbox/bubblewrap-provider.js';
import { isSandboxUnavailable } from '../sandbox/errors.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import { runInSandbox } from '../sandbox/run.js';
import type { Sandbox } from '../sandbox/types.js';
import type { GlobalOptions } from './context.js';
import { ExecAudit } from './exec-audit.js';
import { collect } from './options.js';

/** Exit status when the sandbox itself could not be set up (as `docker run` and `env` use it). */
export const EXIT_SANDBOX_UNAVAILABLE = 125;

interface ExecOptions {
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
 * In the order that makes a one-shot exec quick (docs/SANDBOX.md, "Start-up of
 * tagbox exec"): the sandbox starts first, from the few small modules it
 * needs, while a worker thread loads the rest — config, bundles, the store
 * for the audit log, all large libraries — and opens the store on another CPU.
 * The command runs once both are done and its sandbox's creation is in the
 * audit log.
 */
async function execCommand(argv: string[], opts: ExecOptions, command: Command, stopped: AbortSignal): Promise<number> {
  const limits = parseLimits(opts);
  const globals = command.optsWithGlobals<GlobalOptions>();
  const home = ensureHome(resolveHome(globals.home));
  // Without bundles or upstream flags nothing is reachable and nothing needs
  // checking up front: the proxy (and its vault) start only if the sandbox
  // connects. With them, they start before the command, so that their errors
  // come before it runs.
  const lazy = !opts.bundles && opts.connectTo.length === 0 && !opts.upstreamCa;

  const audit = new ExecAudit();
  const providerReady = createBubblewrapProvider({ home, probe: 'on-failure' });
  providerReady.catch(() => undefined);
  const caCertPem = await deploymentCaCertificate(homePaths(home).caDir);

  let provider: Awaited<typeof providerReady>;
  try {
    provider = await providerReady;
  } catch (error) {
    await audit.close();
    if (!isSandboxUnavailable(error)) throw error;
    process.stderr.write(`tagbox: ${error.message}\n`);
    return EXIT_SANDBOX_UNAVAILABLE;
  }

  const session = `exec-${randomBytes(6).toString('hex')}`;
  const opened = audit.open({
    globals,
    ...(opts.bundles ? { bundles: opts.bundles } : {}),
    bundle: opts.bundle,
    event: { type: 'sandbox', action: 'create', session, actor: 'cli', command: argv[0] ?? '' },
  });
  opened.catch(() => undefined);
  const proxySocket = provider.proxySocketPath(`exec-${process.pid}-${session.slice(5)}`);
  const proxy = await SessionProxy.bind(
    proxySocket,
    async (acceptor) => {
      const [{ startProxyRuntime }, { contextFrom }, { policyFromBundleFile }] = await Promise.all([
        import('../proxy/runtime.js'),
        import('./context.js'),
        import('../proxy/policy-source.js'),
      ]);
      const ctx = contextFrom(command);
      const { policy } = policyFromBundleFile(opts.bundles, opts.bundle);
      const runtime = await startProxyRuntime(ctx, { connectTo: opts.connectTo, ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}) });
      try {
        await runtime.proxy.listen({ acceptor }, { session, policy });
      } catch (error) {
        await runtime.close();
        throw error;
      }
      return runtime;
    },
    (error) => process.stderr.write(`tagbox: the proxy could not start, so nothing is reachable: ${describeError(error)}\n`),
  );
  // Loading the proxy busies this thread: when it must start before the command,
  // it does once the sandbox's processes run on their own (or its start failed).
  let launch = () => {};
  const launched = new Promise<void>((resolve) => (launch = resolve));
  let sandboxReady: Promise<Sandbox> | undefined;
  try {
    sandboxReady = provider.create({ proxySocket, caCertPem, limits, label: session, onLaunched: launch });
    sandboxReady.then(launch, launch);
    if (!lazy) await launched.then(() => proxy.start());
    await opened;
    let sandbox: Sandbox;
    try {
      sandbox = await sandboxReady;
    } catch (error) {
      if (!isSandboxUnavailable(error)) throw error;
      process.stderr.write(`tagbox: ${error.message}\n`);
      return EXIT_SANDBOX_UNAVAILABLE;
    }
    if (stopped.aborted) return 1;
    const result = await runInSandbox(
      provider,
      sandbox,
      { argv, stdin: process.stdin.isTTY ? '' : process.stdin, signal: stopped, ...(limits.wallMs ? { timeoutMs: limits.wallMs } : {}) },
      { stdout: process.stdout, stderr: process.stderr },
    );
    await Promise.all([
      provider.release(sandbox),
      audit.append({ type: 'sandbox', action: 'release', session, exitCode: result.exitCode, ...(result.limit ? { limit: result.limit } : {}), durationMs: result.durationMs }),
    ]);
    return result.exitCode;
  } finally {
    process.stdin.destroy();
    // Whatever happened: the sandbox goes, then the proxy (flushing its audit), then the store.
    await sandboxReady?.then((sandbox) => provider.release(sandbox), () => undefined);
    await proxy.close();
    await audit.close();
  }
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
