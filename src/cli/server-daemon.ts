import type { Command } from 'commander';

/**
 * `tagbox server-daemon --control SOCKET` (hidden): the server child of
 * `tagbox up` — admin API, chat API, /healthz, /metrics, housekeeping, the
 * session layer and its sandboxes (server-main.ts). It never opens
 * the vault, never sees the master key (it is not in this process's
 * environment) and, under privilege separation, cannot read the vault's file:
 * secrets are written through the Agent Proxy's control socket, where the
 * proxy checks that the peer is this process. It exits on SIGINT/SIGTERM or
 * when its parent goes (its stdin closes).
 */
export function registerServerDaemon(program: Command): void {
  program
    .command('server-daemon', { hidden: true })
    .description('internal: the server child of `tagbox up`')
    .requiredOption('--control <socket>', "the Agent Proxy's control socket")
    .option('--port <n>', 'port to listen on (default: server.port)')
    // The server's modules load when it starts, not for every verb (startup cost, open files).
    .action(async (opts: { control: string; port?: string }, command: Command) => (await import('./server-main.js')).runServer(opts, command));
}
