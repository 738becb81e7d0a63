import type { Command } from 'commander';
import { deploymentCaCertificate } from '../proxy/ca.js';
import { contextFrom } from './context.js';

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('the deployment CA that clients of the proxy trust');
  ca.command('cert')
    .description('print the deployment CA certificate (PEM); created on first use')
    .action(async (_opts, command: Command) => {
      const ctx = contextFrom(command);
      process.stdout.write(await deploymentCaCertificate(ctx.paths.caDir));
    });
}
