import type { Command } from 'commander';
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { invalidInput } from '../errors.js';
import { initializeVault } from '../vault/bootstrap.js';
import { loadMasterKey, MasterKey, MASTER_KEY_ENV, readKeyFile, writeKeyFileExclusive } from '../vault/master-key.js';
import { rotateMasterKey } from '../vault/rotate-master.js';
import { describeLocation } from '../store/connect.js';
import { contextFrom } from './context.js';
import { withVault } from './secret.js';

/** tagbox vault init | rotate-master: key management. Never prints a key. */
export function registerVault(program: Command): void {
  const vault = program.command('vault').description('manage the vault key pair and its master key');

  vault
    .command('init')
    .description('create the vault key pair (done automatically by the first `secret set`)')
    .action(async (_opts, command: Command) => {
      const ctx = contextFrom(command);
      const keyFile = ctx.config.vault.masterKeyFile ?? ctx.paths.masterKey;
      await withVault(ctx, async (store) => {
        let source = '';
        const { created } = await initializeVault(store, () => {
          const loaded = loadMasterKey({ keyFile, create: true });
          source = loaded.key.source.kind === 'env' ? MASTER_KEY_ENV : `${keyFile}${loaded.created ? ' (created, mode 0600)' : ''}`;
          return loaded.key;
        });
        const where = describeLocation(store.location);
        process.stdout.write(created ? `created the vault key pair in ${where}; its private key is wrapped by the master key from ${source}\n` : `the vault in ${where} already has a key pair\n`);
      });
    });

  vault
    .command('rotate-master')
    .description(
      're-wrap the vault private key under a new master key. Without --new-key-file, a new key is generated into the key file ' +
        '(the old one is kept as <file>.old until the vault is re-wrapped). Secrets are not re-sealed.',
    )
    .option('--new-key-file <file>', 'take the new master key (base64 of 32 bytes) from this file; then point TAGBOX_MASTER_KEY or vault.masterKeyFile at it')
    .action(async (opts: { newKeyFile?: string }, command: Command) => {
      const ctx = contextFrom(command);
      const keyFile = ctx.config.vault.masterKeyFile ?? ctx.paths.masterKey;
      await withVault(ctx, async (store) => {
        const current = loadMasterKey({ keyFile, create: false }).key;
        if (opts.newKeyFile !== undefined) {
          const next = readKeyFile(opts.newKeyFile).key;
          await rotateMasterKey(store, current, next);
          process.stdout.write(
            `re-wrapped the vault private key under the master key in ${opts.newKeyFile}; ${current.describe()} no longer opens the vault.\n` +
              `Point ${MASTER_KEY_ENV} or vault.masterKeyFile at the new key before the next start.\n`,
          );
          return;
        }
        if (current.source.kind === 'env') {
          throw invalidInput(`the current master key comes from ${MASTER_KEY_ENV}; pass the new key with --new-key-file FILE, then update ${MASTER_KEY_ENV}`);
        }
        const next = MasterKey.generate({ kind: 'file', file: keyFile });
        const pending = `${keyFile}.new`;
        const previous = `${keyFile}.old`;
        // A .new file left by an interrupted rotation was never installed: the vault does not depend on it.
        if (existsSync(pending)) unlinkSync(pending);
        writeKeyFileExclusive(pending, next);
        await rotateMasterKey(store, current, next, {
          installNewKey: () => {
            copyFileSync(keyFile, previous);
            renameSync(pending, keyFile);
            syncDirectory(dirname(keyFile));
          },
        });
        unlinkSync(previous);
        process.stdout.write(`rotated the master key: the new key is in ${keyFile}; the previous key no longer opens the vault\n`);
      });
    });
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
