import type { Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AccessAdmin } from '../access/admin-service.js';
import { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import { buildServer, type ServerOptions } from '../server/app.js';
import { firstRun, type FirstRun } from '../server/first-run.js';
import { startHousekeeping } from '../server/housekeeping.js';
import { unavailable } from '../server/http-errors.js';
import { ProxySupervisor } from '../server/proxy-supervisor.js';
import { Sealer } from '../vault/sealer.js';
import { openVaultStore, vaultStoreLocation, type VaultStore } from '../vault/store.js';
import { contextFrom } from './context.js';

/**
 * `tagbox up [--port N]`: the server (admin API, /healthz, /metrics) in this
 * process and the Agent Proxy in a supervised child, the only process that
 * holds the vault's private key. This process gets the Sealer (public key) and
 * nothing more. On a first run it creates the org and the first Owner and
 * prints a one-time token; several `tagbox up` on one Postgres agree on one.
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start the server and the Agent Proxy; on first run, create the first Owner and print how to sign in')
    .option('--port <n>', 'port to listen on (default: server.port, 8787; 0 picks a free one)')
    .action(async (opts: { port?: string }, command: Command) => {
      const port = opts.port === undefined ? undefined : parsePort(opts.port);
      const ctx = contextFrom(command);
      const store = await ctx.openStore();
      const audit = new AuditLog(store);
      const access = new AccessAdmin(store, audit);
      const first = await firstRun(store, access, audit);

      const controlSocket = join(ctx.paths.sockets, `proxy-${process.pid}.sock`);
      const globals = command.optsWithGlobals<{ config?: string }>();
      const supervisor = new ProxySupervisor({
        args: [process.argv[1]!, '--home', ctx.home, ...(globals.config ? ['--config', globals.config] : []), 'proxy-daemon', '--control', controlSocket],
        controlSocket,
        env: { ...process.env, TAGBOX_HOME: ctx.home },
        logger: ctx.logger,
      });
      // The vault is opened only after the proxy child has initialised it (the
      // child holds the master key; this process must never need it).
      let vault: Promise<VaultStore> | undefined;
      const sealer = async (): Promise<Sealer> => {
        if (!supervisor.everReady) throw unavailable('the Agent Proxy (and with it the vault) is still starting; try again in a moment', 'vault_starting');
        vault ??= openVaultStore(vaultStoreLocation(ctx.home, ctx.config));
        return Sealer.connect(await vault);
      };
      supervisor.start();
      const housekeeping = startHousekeeping({ store, access, orgId: first.org.id, home: ctx.home, logger: ctx.logger });
      // Whatever happens from here (a port in use, a signal), the child goes too.
      try {
        await serve({ store, audit, access, sealer, supervisor, first, logger: ctx.logger, host: ctx.config.server.host, port: port ?? ctx.config.server.port });
      } finally {
        await housekeeping.stop();
        await supervisor.stop();
        await (await vault)?.close();
        await store.close();
      }
    });
}

interface ServeOptions extends Omit<ServerOptions, 'readiness'> {
  supervisor: ProxySupervisor;
  first: FirstRun;
  host: string;
  port: number;
}

/** Listens, prints the banner (and a first-run token), and serves until SIGINT or SIGTERM. */
async function serve(options: ServeOptions): Promise<void> {
  const { supervisor, first } = options;
  const app = await buildServer({
    ...options,
    readiness: async () => {
      const healthy = await supervisor.healthy();
      return { ready: healthy, detail: { proxy: healthy ? 'ready' : 'starting' } };
    },
  });
  try {
    await app.listen({ host: options.host, port: options.port });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;

    const proxyReady = await supervisor.waitReady(60_000);
    const out: string[] = [`Tagbox is up at ${url}`, `  API: ${url}/api/v1/  (OpenAPI: ${url}/api/v1/openapi.json)`];
    out.push(proxyReady ? `  Agent Proxy: ready, pid ${supervisor.pid}` : '  Agent Proxy: not ready yet (see the log); /healthz answers 503 until it is');
    if (first.ownerToken) {
      out.push(
        '',
        'First run: created the org and its first Owner. Sign in with this one-time API token;',
        'it is shown only now and cannot be recovered (create more with POST /api/v1/tokens):',
        '',
        `  ${first.ownerToken}`,
        '',
        `  curl -H "Authorization: Bearer ${first.ownerToken}" ${url}/api/v1/org`,
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);

    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  } finally {
    await app.close();
  }
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw invalidInput(`--port: expected a port number 0-65535, got "${value}"`);
  return n;
}
