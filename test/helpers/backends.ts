import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { StoreLocation } from '../../src/store/connect.js';

/**
 * Every store test runs on SQLite and on the real Postgres of this machine.
 * Each run gets a fresh SQLite directory or a fresh Postgres schema, so runs
 * never collide; Postgres being unreachable is a failure, never a skip.
 */
export const POSTGRES_URL = process.env.TAGBOX_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type BackendName = 'sqlite' | 'postgres';
export const BACKENDS: BackendName[] = ['sqlite', 'postgres'];

export interface TestBackend {
  name: BackendName;
  /** A fresh location for a control store. */
  location: StoreLocation;
  /** For a second store of the same run (the vault's own schema or file). */
  sibling(suffix: string): StoreLocation;
  /** Environment for a child `tagbox` process that should use this backend. */
  env: Record<string, string>;
  home: string;
  cleanup(): Promise<void>;
}

export async function createTestBackend(name: BackendName): Promise<TestBackend> {
  const home = mkdtempSync(join(tmpdir(), 'tagbox-test-'));
  if (name === 'sqlite') {
    return {
      name,
      home,
      location: { dialect: 'sqlite', file: join(home, 'tagbox.db') },
      sibling: (suffix) => ({ dialect: 'sqlite', file: join(home, `${suffix}.db`) }),
      env: { TAGBOX_HOME: home },
      cleanup: async () => rmSync(home, { recursive: true, force: true }),
    };
  }
  const schema = `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const schemas = [schema];
  return {
    name,
    home,
    location: { dialect: 'postgres', url: POSTGRES_URL, schema },
    sibling: (suffix) => {
      schemas.push(`${schema}_${suffix}`);
      return { dialect: 'postgres', url: POSTGRES_URL, schema: `${schema}_${suffix}` };
    },
    env: { TAGBOX_HOME: home, TAGBOX_DATABASE_URL: POSTGRES_URL, TAGBOX_DATABASE_SCHEMA: schema },
    cleanup: async () => {
      rmSync(home, { recursive: true, force: true });
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        // The vault's schema follows the `<schema>_vault` convention too.
        for (const s of [...schemas, `${schema}_vault`]) await client.query(`drop schema if exists "${s}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
