import { Writable } from 'node:stream';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { AuditLog } from '../../src/audit/log.js';
import { buildServer } from '../../src/server/app.js';
import { firstRun } from '../../src/server/first-run.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { initializeVault } from '../../src/vault/bootstrap.js';
import { MasterKey } from '../../src/vault/master-key.js';
import { Sealer } from '../../src/vault/sealer.js';
import { openVaultStore, type VaultStore } from '../../src/vault/store.js';
import { createTestBackend, type BackendName, type TestBackend } from '../helpers/backends.js';

export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are read ad hoc
  body: any;
  text: string;
}

/** A real server on a free port, over one backend, with the first Owner's token. */
export interface ApiHarness {
  backend: TestBackend;
  store: ControlStore;
  vault: VaultStore;
  url: string;
  ownerToken: string;
  ownerMemberId: string;
  webWorkspaceId: string;
  /** Everything the server logged, as text. */
  logs(): string;
  api(token: string | undefined, method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** A new member of the web workspace with a token of the given role. */
  tokenFor(role: 'owner' | 'admin' | 'member', name: string): Promise<{ token: string; memberId: string }>;
  close(): Promise<void>;
}

export async function startApi(name: BackendName): Promise<ApiHarness> {
  const backend = await createTestBackend(name);
  const store = await openControlStore(backend.location);
  const vault = await openVaultStore(backend.sibling('vault'));
  await initializeVault(vault, () => MasterKey.generate({ kind: 'env', variable: 'TEST_MASTER_KEY' }));
  const sealer = await Sealer.connect(vault);
  const audit = new AuditLog(store);
  const access = new AccessAdmin(store, audit);
  const run = await firstRun(store, access, audit);
  const chunks: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString('utf8')), cb()) }));
  const app: FastifyInstance = await buildServer({ store, audit, access, sealer: async () => sealer, logger });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const web = (await access.listWorkspaces(run.org.id)).find((w) => w.kind === 'web')!;

  const api: ApiHarness['api'] = async (token, method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
  let n = 0;
  return {
    backend,
    store,
    vault,
    url,
    ownerToken: run.ownerToken!,
    ownerMemberId: run.ownerMemberId!,
    webWorkspaceId: web.id,
    logs: () => chunks.join(''),
    api,
    tokenFor: async (role, label) => {
      n += 1;
      const roles = role === 'member' ? [] : [role];
      const member = await api(run.ownerToken, 'POST', `/api/v1/workspaces/${web.id}/members`, { externalId: `${label}-${n}`, displayName: label, hasAccount: true, roles });
      if (member.status !== 201) throw new Error(`create member: ${member.status} ${member.text}`);
      const token = await api(run.ownerToken, 'POST', '/api/v1/tokens', { name: label, memberId: member.body.id, role });
      if (token.status !== 201) throw new Error(`create token: ${token.status} ${token.text}`);
      return { token: token.body.token as string, memberId: member.body.id as string };
    },
    close: async () => {
      await app.close();
      await vault.close();
      await store.close();
      await backend.cleanup();
    },
  };
}
