import { AccessAdmin } from '../../src/access/admin-service.js';
import type { Channel, Member, Org, Workspace } from '../../src/access/model.js';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { createTestBackend, type BackendName, type TestBackend } from '../helpers/backends.js';

/** A small company: two workspaces, channels in each, members. */
export interface World {
  backend: TestBackend;
  store: ControlStore;
  audit: AuditLog;
  admin: AccessAdmin;
  org: Org;
  ws1: Workspace;
  ws2: Workspace;
  eng: Channel;
  random: Channel;
  sales: Channel;
  ada: Member;
  bob: Member;
  close(): Promise<void>;
}

export async function createWorld(backendName: BackendName): Promise<World> {
  const backend = await createTestBackend(backendName);
  const store = await openControlStore(backend.location);
  const audit = new AuditLog(store);
  const admin = new AccessAdmin(store, audit);
  const org = await admin.ensureDefaultOrg('acme');
  const ws1 = await admin.createWorkspace('test', { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'acme-eng' });
  const ws2 = await admin.createWorkspace('test', { orgId: org.id, kind: 'web', externalId: 'W2', name: 'acme-sales' });
  const eng = await admin.createChannel('test', { workspaceId: ws1.id, externalId: 'C1', name: 'eng' });
  const random = await admin.createChannel('test', { workspaceId: ws1.id, externalId: 'C2', name: 'random' });
  const sales = await admin.createChannel('test', { workspaceId: ws2.id, externalId: 'C3', name: 'sales', isPrivate: true });
  const ada = await admin.createMember('test', { workspaceId: ws1.id, externalId: 'U1', displayName: 'Ada', hasAccount: true, roles: ['eng'] });
  const bob = await admin.createMember('test', { workspaceId: ws1.id, externalId: 'U2', displayName: 'Bob' });
  return {
    backend, store, audit, admin, org, ws1, ws2, eng, random, sales, ada, bob,
    close: async () => {
      await store.close();
      await backend.cleanup();
    },
  };
}
