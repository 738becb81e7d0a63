import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { auditCheckpointOptions } from '../audit/checkpoints.js';
import { delegateCgroups } from '../privsep/cgroups.js';
import { EXEC_GRANT_SOCKET } from '../server/exec-protocol.js';
import { prepareHome } from '../privsep/home.js';
import { childReadables, describePlan, INSTALL_DIR, privsepPlan, type PrivsepPlan } from '../privsep/plan.js';
import { detectLimitMechanism } from '../sandbox/host-support.js';
import { ProxySupervisor } from '../server/proxy-supervisor.js';
import { contextFrom } from './context.js';
import { parsePort } from './options.js';

const TAGBOX_BIN = join(INSTALL_DIR, 'bin', 'tagbox.js');

/**
 * `tagbox up [--port N]`: starts Tagbox as three processes and supervises them.
 * This process only launches: it serves nothing and opens no store.
 *   server       (`server-daemon`): admin API, /healthz, /metrics, housekeeping, sandboxes
 *   Agent Proxy  (`proxy-daemon`):  the only process that holds the vault's key; restarted if it dies
 * Started as root, each runs as its own system user (privilege separation, see
 * privsep/plan.ts); started unprivileged, all run as that user (single-user
 * mode, weaker). Either way the master key, when given in TAGBOX_MASTER_KEY,
 * reaches the proxy's environment and never the server's, and the proxy's
 * control socket serves the server's pid alone.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start the server and the Agent Proxy; on first run, create the first Owner and print how to sign in')
    .option('--port <n>', 'port to listen on (default: server.port, 8787; 0 picks a free one)')
    .action(async (opts: { port?: string }, command: Command) => {
      if (opts.port !== undefined) parsePort(opts.port);
      const ctx = contextFrom(command);
      const globals = command.optsWithGlobals<{ config?: string }>();
      const plan = privsepPlan({ home: ctx.home, readable: childReadables(globals.config) });
      if (plan.mode === 'separated') {
        prepareHome(plan, {
          ...(ctx.config.vault.masterKeyFile ? { masterKeyFile: ctx.config.vault.masterKeyFile } : {}),
          auditKeyFile: auditCheckpointOptions(plan.home, ctx.config).keyFile,
        });
        await delegateCgroups(detectLimitMechanism(), plan.server.uid, plan.server.gid);
        ctx.logger.info(`privilege separation ${describePlan(plan)}`);
      } else {
        mkdirSync(ctx.paths.sockets, { recursive: true, mode: 0o700 });
        ctx.logger.warn(`privilege separation ${describePlan(plan)}; start Tagbox as root after \`npm run setup\` to separate them`);
      }
      // The server's database is its group's (the proxy appends audit events); the proxy keeps its files to itself.
      process.umask(0o007);
      process.exitCode = await launch(plan, { ...(globals.config ? { config: globals.config } : {}), ...(opts.port ? { port: opts.port } : {}) }, ctx.logger);
    });
}

interface LaunchFlags {
  config?: string;
  port?: string;
}

async function launch(plan: PrivsepPlan, flags: LaunchFlags, logger: ReturnType<typeof contextFrom>['logger']): Promise<number> {
  const realHome = plan.home;
  const global = ['--home', realHome, ...(flags.config ? ['--config', flags.config] : [])];
  const controlSocket = join(realHome, 'run', `proxy-${process.pid}.sock`);
  const separated = plan.mode === 'separated';
  // The key is for the proxy alone: the server's environment never holds it
  // (the variable vault/master-key.ts reads; the control plane may not import that module).
  const serverEnv: NodeJS.ProcessEnv = { ...process.env, TAGBOX_HOME: realHome };
  delete serverEnv.TAGBOX_MASTER_KEY;

  const server = spawn(process.execPath, [TAGBOX_BIN, ...global, 'server-daemon', '--control', controlSocket, ...(flags.port ? ['--port', flags.port] : [])], {
    env: serverEnv,
    stdio: ['pipe', 'inherit', 'inherit'],
    detached: true,
    ...(separated ? { uid: plan.server.uid, gid: plan.server.gid } : {}),
  });
  server.stdin!.on('error', () => undefined);
  const serverExit = new Promise<number>((resolve) => {
    server.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    server.once('error', (error) => {
      logger.error({ err: error }, 'cannot start the server');
      resolve(1);
    });
  });

  const proxy = new ProxySupervisor({
    args: [
      TAGBOX_BIN, ...global, 'proxy-daemon', '--control', controlSocket,
      '--peer-pid', String(server.pid ?? 0), '--peer-uid', String(separated ? plan.server.uid : process.getuid!()),
      '--socket-mode', separated ? '660' : '600',
      // `tagbox exec` clients give their bundle files to the proxy here, never through the server.
      '--grant-socket', join(realHome, 'run', EXEC_GRANT_SOCKET),
    ],
    env: { ...process.env, TAGBOX_HOME: realHome },
    logger,
    ...(separated ? { uid: plan.proxy.uid, gid: plan.proxy.gid } : {}),
  });
  proxy.start();

  const stop = (signal: NodeJS.Signals) => {
    if (server.exitCode === null && server.signalCode === null) server.kill(signal === 'SIGINT' ? 'SIGTERM' : signal);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  const code = await serverExit;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  process.off('SIGHUP', stop);
  await proxy.stop();
  return code;
}
