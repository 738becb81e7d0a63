import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore } from '../../src/store/database.js';
import { Opener } from '../../src/vault/private/opener.js';
import { openVaultStore } from '../../src/vault/store.js';
import { BACKENDS, createTestBackend, POSTGRES_URL, type TestBackend } from '../helpers/backends.js';
import { runTagbox, type CliResult } from '../helpers/cli.js';
import { cliMasterKey, cliVaultLocation } from './cli-helpers.js';

/**
 * A random secret goes in through every door (CLI set from stdin and from a
 * file, a dynamic kind's document, rejected inputs, opens by the proxy's
 * Opener with the real audit log) and must come out of none: not the database
 * files (WAL and shared memory included) or Postgres tables, not stdout or
 * stderr at trace log level, not the audit log, not an error message.
 */
describe.each(BACKENDS)('canary on %s', (backendName) => {
  let backend: TestBackend;
  beforeEach(async () => {
    backend = await createTestBackend(backendName);
  });
  afterEach(async () => {
    await backend.cleanup();
  });

  it('never appears anywhere but in the opener\'s hands', async () => {
    const canary = `CANARY${randomBytes(20).toString('hex')}`;
    const outputs: CliResult[] = [];
    const tagbox = async (args: string[], input?: string | Buffer) => {
      const result = await runTagbox(args, { env: { ...backend.env, TAGBOX_LOG_LEVEL: 'trace' }, input });
      outputs.push(result);
      return result;
    };

    expect((await tagbox(['secret', 'set', 'canary'], `${canary}\n`)).code).toBe(0);
    const file = join(backend.home, 'in.txt');
    writeFileSync(file, `${canary}-v2`);
    expect((await tagbox(['secret', 'set', 'canary', '--from-file', file])).code).toBe(0);
    expect((await tagbox(['secret', 'set', 'oauth', '--kind', 'oauth2-client-credentials'], `tokenUrl: https://auth.test/t\nclientId: c\nclientSecret: ${canary}\n`)).code).toBe(0);
    // Rejected inputs that carry the canary: their messages must not echo it.
    expect((await tagbox(['secret', 'set', 'bad', '--kind', 'oauth2-client-credentials'], `tokenUrl: http://x\nclientId: c\nclientSecret: ${canary}\n  - [`)).code).toBe(2);
    expect((await tagbox(['secret', 'set', 'bad', '--kind', 'github-app'], JSON.stringify({ appId: 1, installationId: 2, privateKey: canary }))).code).toBe(2);
    expect((await tagbox(['secret', 'set', 'bad'], `${canary}\r\nInjected: 1`)).code).toBe(2);
    expect((await tagbox(['secret', 'set', 'bad'], Buffer.concat([Buffer.from(canary), Buffer.alloc(70_000, 0x61)]))).code).toBe(2);
    expect((await tagbox(['secret', 'set', 'Bad Name'], canary)).code).toBe(2);
    expect((await tagbox(['secret', 'list'])).code).toBe(0);
    expect((await tagbox(['secret', 'list', '--json'])).code).toBe(0);

    // The proxy's side: open with the real audit log, then a tampered open.
    const control = await openControlStore(backend.location);
    const vaultStore = await openVaultStore(cliVaultLocation(backend));
    const opener = await Opener.unlock(vaultStore, cliMasterKey(backend), { audit: new AuditLog(control), lastUsedFlushMs: 10 });
    expect((await opener.open('canary', { connection: 'c', session: 's' })).value).toBe(`${canary}-v2`);
    expect((await opener.open('oauth', { connection: 'c' })).value).toContain(canary);
    await vaultStore.db.updateTable('secrets').set({ version: 99 }).where('name', '=', 'oauth').execute();
    const failed = await opener.open('oauth', { connection: 'c' }).then(() => undefined, (e: Error) => e);
    expect(failed?.message).toMatch(/failed to open/);
    expect(failed?.message).not.toContain(canary);
    await opener.close();

    expect((await tagbox(['audit', 'export'])).code).toBe(0);
    const audit = outputs.at(-1)!.stdout;
    expect(audit).toMatch(/"type":"credential-use"/);

    // Everything any process printed.
    for (const { stdout, stderr } of outputs) {
      expect(stdout).not.toContain(canary);
      expect(stderr).not.toContain(canary);
    }

    if (backend.name === 'sqlite') {
      // Read the files while the stores are still open, so the WAL and shm files exist.
      const files = [backend.home, join(backend.home, 'vault')].flatMap((dir) =>
        readdirSync(dir).filter((f) => /\.db(-wal|-shm)?$/.test(f)).map((f) => join(dir, f)),
      );
      expect(files.map((f) => f.slice(backend.home.length + 1))).toEqual(
        expect.arrayContaining(['tagbox.db', 'vault/vault.db', 'vault/vault.db-wal', 'vault/vault.db-shm']),
      );
      for (const f of files) expect({ f, found: readFileSync(f).includes(canary) }).toEqual({ f, found: false });
    } else {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const schemas = [backend.location.dialect === 'postgres' ? backend.location.schema : '', `${(backend.location as { schema: string }).schema}_vault`];
        const { rows: tables } = await client.query<{ s: string; t: string }>(
          'select table_schema as s, table_name as t from information_schema.tables where table_schema = any($1)',
          [schemas],
        );
        expect(tables.map((t) => t.t)).toEqual(expect.arrayContaining(['secrets', 'vault_keypair', 'vault_key_wrappings', 'audit_events']));
        for (const { s, t } of tables) {
          const { rows } = await client.query<{ row: string }>(`select x::text as row from "${s}"."${t}" x`);
          expect({ table: `${s}.${t}`, found: rows.some((r) => r.row.includes(canary)) }).toEqual({ table: `${s}.${t}`, found: false });
        }
      } finally {
        await client.end();
      }
    }
    expect(await sql`select 1`.execute(vaultStore.db)).toBeTruthy();
    await vaultStore.close();
    await control.close();
  }, 120_000);
});
