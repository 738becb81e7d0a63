import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { describeError } from '../errors.js';
import { ensureHome, homePaths, resolveHome } from '../home.js';
import { deploymentCaCertificate } from '../proxy/ca.js';
import { SessionProxy } from '../proxy/session-proxy.js';
import { createBubblewrapProvider } from '../sandbox/bubblewrap-provider.js';
import { EXIT_SANDBOX_UNAVAILABLE, isSandboxUnavailable } from '../sandbox/errors.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import { runInSandbox } from '../sandbox/run.js';
import type { Sandbox } from '../sandbox/types.js';
import type { GlobalOptions } from './context.js';
import { ExecAudit } from './exec-audit.js';
import type { ExecOptions } from './exec.js';

/**
 * In the order that makes a one-shot exec quick (docs/SANDBOX.md, "Start-up of
 * tagbox exec"): the sandbox starts first, from the few small modules it
 * needs, while a worker thread loads the rest — config, bundles, the store
 * for the audit log, all large libraries — and opens the store on another CPU.
 * The command runs once both are done and its sandbox's creation is in the
 * audit log.
 */
export async function execHere(argv: string[], opts: ExecOptions, limits: Partial<SandboxLimits>, command: Command, stopped: AbortSignal): Promise<number> {
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
