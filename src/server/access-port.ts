import type { Bundle, BundleSpec, Channel, Connection, ConnectionSpec, Member, Org, Scope, Workspace, WorkspaceKind } from '../access/model.js';
import type { OrgSettings } from '../access/orgs-repo.js';

/**
 * What the API needs of src/access/admin-service.ts (AccessAdmin): the one
 * service that changes access (a transaction, a policy revision bump and an
 * admin-change audit event per call). Routes never write access tables
 * themselves. `actor` is the calling member's id.
 */
export interface AccessAdminPort {
  ensureDefaultOrg(name?: string): Promise<Org>;
  getOrg(orgId: string): Promise<Org>;
  updateOrgSettings(actor: string, orgId: string, changes: Partial<OrgSettings>): Promise<Org>;
  createWorkspace(actor: string, input: { orgId: string; kind: WorkspaceKind; externalId: string; name: string }): Promise<Workspace>;
  listWorkspaces(orgId: string): Promise<Workspace[]>;
  createChannel(actor: string, input: { workspaceId: string; externalId: string; name: string; isPrivate?: boolean }): Promise<Channel>;
  listChannels(workspaceId: string): Promise<Channel[]>;
  createMember(
    actor: string,
    input: { workspaceId: string; externalId: string; displayName: string; hasAccount?: boolean; isGuest?: boolean; roles?: string[] },
  ): Promise<Member>;
  setMemberRoles(actor: string, memberId: string, roles: string[]): Promise<Member>;
  putBundle(actor: string, orgId: string, spec: BundleSpec): Promise<Bundle>;
  deleteBundle(actor: string, orgId: string, name: string): Promise<unknown>;
  listBundles(orgId: string): Promise<Bundle[]>;
  getBundle(orgId: string, name: string): Promise<Bundle | undefined>;
  attach(actor: string, orgId: string, bundleName: string, scope: Scope): Promise<unknown>;
  detach(actor: string, orgId: string, bundleName: string, scope: Scope): Promise<unknown>;
  putPersonalConnector(actor: string, orgId: string, memberId: string, spec: ConnectionSpec): Promise<Connection>;
  deletePersonalConnector(actor: string, memberId: string, name: string): Promise<unknown>;
  listPersonalConnectors(memberId: string): Promise<Connection[]>;
  policyRevision(orgId: string): Promise<number>;
}
