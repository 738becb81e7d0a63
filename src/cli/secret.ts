import { Option, type Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { isPersonalSecretName } from '../access/personal-secrets.js';
import { AuditLog } from '../audit/log.js';
import { failure, invalidInput, isTagboxError } from '../errors.js';
import { initializeVault } from '../vault/bootstrap.js';
import { CREDENTIAL_KINDS, type CredentialKind } from '../vault/kinds.js';
import { loadMasterKey } from '../vault/master-key.js';
import { MAX_SECRET_BYTES, stripOneTrailingNewline, validateSecretName } from '../vault/names.js';
import { Sealer, type SecretMetadata } from '../vault/sealer.js';
import { openVaultStore, vaultStoreLocation, type VaultStore } from '../vault/store.js';
import { contextFrom, withStore, type CliContext } from './context.js';

/**
 * tagbox secret set | list | rm. Write-only by construction: this file holds a
 * Sealer (public key), and there is no verb or flag that prints a value.
 */
export function registerSecret(program: Command): void {
  const secret = program.command('secret').description('write-only secrets in the vault (values are never shown again)');

  secret
    .command('set')
    .description('create a secret, or rotate it to a new version; the value comes from stdin (one trailing newline is dropped)')
    .argument('<name>', 'secret name: 1-63 of a-z 0-9 . _ -, starting with a letter or digit')
    .option('--from-file <file>', 'read the value from a file instead of stdin (one trailing newline is dropped)')
    .addOption(new Option('--kind <kind>', 'static value, or a JSON/YAML document for a dynamic kind').choices([...CREDENTIAL_KINDS]).default('static'))
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { fromFile?: string; kind: CredentialKind; json?: boolean }, command: Command) => {
      validateOrgSecretName(name);
      const raw = opts.fromFile !== undefined ? readValueFile(opts.fromFile) : await readStdin();
      const value = stripOneTrailingNewline(raw);
      const ctx = contextFrom(command);
      await withVault(ctx, async (store) => {
        // The master key is needed only to create the vault's key pair on first use.
        await initializeVault(store, () => {
          const loaded = loadMasterKey({ keyFile: ctx.config.vault.masterKeyFile ?? ctx.paths.masterKey, create: true });
          if (loaded.created) process.stderr.write(`created a new vault master key in ${ctx.config.vault.masterKeyFile ?? ctx.paths.masterKey} (mode 0600); keep a copy somewhere safe\n`);
          return loaded.key;
        });
        const sealer = await Sealer.connect(store);
        const result = await sealer.put(name, value, opts.kind);
        await recordAdminChange(ctx, { action: result.created ? 'secret.create' : 'secret.rotate', secret: name, kind: result.kind, version: result.version });
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ name: result.name, kind: result.kind, version: result.version })}\n`
            : `${result.created ? 'created' : 'updated'} secret ${result.name}: kind ${result.kind}, version ${result.version}\n`,
        );
      });
    });

  secret
    .command('list')
    .alias('ls')
    .description('list secret names and metadata (never values)')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const ctx = contextFrom(command);
      await withVault(ctx, async (store) => {
        const secrets = await listOrEmpty(store);
        if (opts.json) process.stdout.write(`${JSON.stringify(secrets)}\n`);
        else process.stdout.write(formatTable(secrets));
      });
    });

  secret
    .command('rm')
    .alias('delete')
    .description('remove a secret and all its versions')
    .argument('<name>', 'secret name')
    .action(async (name: string, _opts, command: Command) => {
      validateOrgSecretName(name);
      const ctx = contextFrom(command);
      await withVault(ctx, async (store) => {
        const sealer = await connectSealer(store);
        if (!sealer || !(await sealer.delete(name))) throw failure(`secret "${name}" not found`, 'secret_not_found');
        await recordAdminChange(ctx, { action: 'secret.remove', secret: name });
        process.stdout.write(`removed secret ${name}\n`);
      });
    });
}

/**
 * The personal. namespace holds members' personal connector secrets; they are
 * written (and removed) only through the member's own connector route, so
 * nobody else can plant, overwrite or delete a member's credential.
 */
function validateOrgSecretName(name: string): void {
  validateSecretName(name);
  if (isPersonalSecretName(name)) {
    throw invalidInput(
      `secret name "${name}": the personal. namespace holds members' personal connector secrets; only the member writes or removes them, through PUT/DELETE /api/v1/me/connectors/NAME`,
      'invalid_secret_name',
    );
  }
}

export async function withVault<T>(ctx: CliContext, fn: (store: VaultStore) => Promise<T>): Promise<T> {
  const store = await openVaultStore(vaultStoreLocation(ctx.home, ctx.config));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Who changed which secret, in the control plane's audit log (names and versions only). */
async function recordAdminChange(ctx: CliContext, fields: Record<string, string | number>): Promise<void> {
  await withStore(ctx, (store) => new AuditLog(store).append({ type: 'admin-change', actor: 'cli', outcome: 'ok', ...fields }));
}

/** A Sealer, or undefined for a vault that has no key pair yet (and so no secrets). */
async function connectSealer(store: VaultStore): Promise<Sealer | undefined> {
  try {
    return await Sealer.connect(store);
  } catch (error) {
    if (isTagboxError(error) && error.code === 'vault_not_initialized') return undefined;
    throw error;
  }
}

async function listOrEmpty(store: VaultStore): Promise<SecretMetadata[]> {
  return (await (await connectSealer(store))?.list()) ?? [];
}

function formatTable(secrets: SecretMetadata[]): string {
  if (secrets.length === 0) return 'no secrets\n';
  const rows = [
    ['NAME', 'KIND', 'VERSION', 'CREATED', 'UPDATED', 'LAST USED'],
    ...secrets.map((s) => [s.name, s.kind, String(s.version), s.createdAt, s.updatedAt, s.lastUsedAt ?? 'never']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

// Read at most one byte past the limit (plus the newline that may be dropped), so a huge input is refused without buffering it all.
const READ_LIMIT = MAX_SECRET_BYTES + 2;

function readValueFile(file: string): Buffer {
  try {
    if (statSync(file).size > READ_LIMIT) throw invalidInput(`${file}: the secret value is larger than ${MAX_SECRET_BYTES} bytes (64 KiB)`, 'invalid_secret_value');
    return readFileSync(file);
  } catch (error) {
    if (isTagboxError(error)) throw error;
    throw invalidInput(`--from-file ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) process.stderr.write('Reading the secret value from stdin; end it with Ctrl-D.\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > READ_LIMIT) {
      process.stdin.destroy();
      throw invalidInput(`the secret value is larger than ${MAX_SECRET_BYTES} bytes (64 KiB)`, 'invalid_secret_value');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
