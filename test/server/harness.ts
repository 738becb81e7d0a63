import { Writable } from 'node:stream';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { AuditLog } from '../../src/audit/log.js';
import { randomBytes } from 'node:crypto';
import { getMember } from '../../src/access/members-repo.js';
import { API_PREFIX, buildServer } from '../../src/server/app.js';
import type { ServerDeps } from '../../src/server/deps.js';
import { firstRun } from '../../src/server/first-run.js';
import type { PrincipalResolver } from '../../src/server/principal.js';
import { apiRoleOf } from '../../src/server/roles.js';
import type { WebConfig } from '../../src/server/web-auth/web-config.js';
import { mintOperatorToken } from '../../src/server/token-service.js';
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
  audit: AuditLog;
  url: string;
  ownerToken: string;
  ownerMemberId: string;
  webWorkspaceId: string;
  /** Everything the server logged, as text. */
  logs(): string;
  api(token: string | undefined, method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /**
   * A new member of the web workspace (added by the Owner) with a token of the
   * given role, minted the legitimate way: a member-role token by the operator
   * path (`tagbox token create`), a stronger one by the member themselves,
   * signed in, through POST /api/v1/tokens.
   */
  tokenFor(role: 'owner' | 'admin' | 'member', name: string): Promise<{ token: string; memberId: string }>;
  /** The operator path in-process (what `tagbox token create --member ID` runs): a member-role token. */
  operatorToken(memberId: string, name: string): Promise<string>;
  close(): Promise<void>;
}

export interface ApiOptions {
  /**
   * Route plugins not (yet) in buildServer, registered under /api/v1 with the
   * same deps, auth and error handling (a feature before the integrator wires it in).
   */
  routes?: ((deps: ServerDeps) => (app: FastifyInstance) => Promise<void>)[];
  /** The `web` section of tagbox.yaml (defaults when absent). */
  web?: WebConfig;
  /** agent.modelSecret, as `tagbox up` passes it. */
  modelSecret?: string;
}

export async function startApi(name: BackendName, options: ApiOptions = {}): Promise<ApiHarness> {
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
  /*
   * A signed-in browser session for a member, as a bearer credential for api():
   * a stand-in for the web sign-in (one-time sign-in links, a later issue). It
   * resolves to the member with the member's own current role, exactly what a
   * session will, so that the member can mint their own tokens.
   */
  const sessions = new Map<string, string>();
  const signIn = (memberId: string): string => {
    const id = `tbs_${randomBytes(16).toString('hex')}`;
    sessions.set(id, memberId);
    return id;
  };
  const sessionResolver: PrincipalResolver = async (request) => {
    const memberId = /^Bearer (tbs_\S+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const member = sessions.has(memberId) ? await getMember(store.db, sessions.get(memberId)!) : undefined;
    if (!member) return undefined;
    return { via: 'session', credentialId: memberId, memberId: member.id, orgId: run.org.id, role: apiRoleOf(member.roles) };
  };
  const model = options.modelSecret ? { modelSecret: options.modelSecret } : {};
  const app: FastifyInstance = await buildServer({ store, audit, access, sealer: async () => sealer, logger, resolvers: [sessionResolver], ...model, ...(options.web ? { web: options.web } : {}) });
  const deps: ServerDeps = { store, audit, access, sealer: async () => sealer, ...model };
  for (const plugin of options.routes ?? []) await app.register(plugin(deps), { prefix: API_PREFIX });
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
  const operatorToken = async (memberId: string, label: string): Promise<string> => {
    const minted = await mintOperatorToken(store, audit, { memberId, name: label, operator: 'operator:test' });
    if (!minted) throw new Error(`operator token: no member ${memberId}`);
    return minted.token;
  };
  let n = 0;
  return {
    backend,
    store,
    vault,
    audit,
    url,
    ownerToken: run.ownerToken!,
    ownerMemberId: run.ownerMemberId!,
    webWorkspaceId: web.id,
    logs: () => chunks.join(''),
    api,
    operatorToken,
    tokenFor: async (role, label) => {
      n += 1;
      const roles = role === 'member' ? [] : [role];
      const member = await api(run.ownerToken, 'POST', `/api/v1/workspaces/${web.id}/members`, { externalId: `${label}-${n}`, displayName: label, hasAccount: true, roles });
      if (member.status !== 201) throw new Error(`create member: ${member.status} ${member.text}`);
      const memberId = member.body.id as string;
      if (role === 'member') return { token: await operatorToken(memberId, label), memberId };
      const token = await api(signIn(memberId), 'POST', '/api/v1/tokens', { name: label, role });
      if (token.status !== 201) throw new Error(`create token: ${token.status} ${token.text}`);
      return { token: token.body.token as string, memberId };
    },
    close: async () => {
      await app.close();
      await vault.close();
      await store.close();
      await backend.cleanup();
    },
  };
}
