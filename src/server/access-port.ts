import type { ActorRef } from '../access/actor.js';
import type { Bundle, BundleSpec, Channel, Connection, Member, Org, PersonalConnectorSpec, Scope, NewWorkspace, Workspace } from '../access/model.js';
import type { BundleChange } from '../access/bundle-diff.js';
import type { OrgSettings } from '../access/orgs-repo.js';

/**
 * What the API needs of src/access/admin-service.ts (AccessAdmin): the one
 * service that changes access (a transaction, a policy revision bump and an
 * admin-change audit event per call). Routes never write access tables
 * themselves. `actor` is always the caller (`actorOf(principal)`: the
 * member the credential belongs to, and the credential), never a member the
 * caller names.
 */
export interface AccessAdminPort {
  ensureDefaultOrg(name?: string): Promise<Org>;
  getOrg(orgId: string): Promise<Org>;
  updateOrgSettings(actor: ActorRef, orgId: string, changes: Partial<OrgSettings>): Promise<Org>;
  createWorkspace(actor: ActorRef, input: NewWorkspace): Promise<Workspace>;
  listWorkspaces(orgId: string): Promise<Workspace[]>;
  createChannel(actor: ActorRef, input: { workspaceId: string; externalId: string; name: string; isPrivate?: boolean }): Promise<Channel>;
  listChannels(workspaceId: string): Promise<Channel[]>;
  createMember(
    actor: ActorRef,
    input: { workspaceId: string; externalId: string; displayName: string; hasAccount?: boolean; isGuest?: boolean; roles?: string[] },
  ): Promise<Member>;
  setMemberRoles(actor: ActorRef, memberId: string, roles: string[]): Promise<Member>;
  putBundle(actor: ActorRef, orgId: string, spec: BundleSpec): Promise<Bundle>;
  deleteBundle(actor: ActorRef, orgId: string, name: string): Promise<unknown>;
  /** Declarative apply of whole bundles, in one transaction (bundles as code). */
  applyBundles(actor: ActorRef, orgId: string, specs: BundleSpec[], options: { prune?: boolean; dryRun?: boolean }): Promise<BundleChange[]>;
  listBundles(orgId: string): Promise<Bundle[]>;
  getBundle(orgId: string, name: string): Promise<Bundle | undefined>;
  attach(actor: ActorRef, orgId: string, bundleName: string, scope: Scope): Promise<unknown>;
  detach(actor: ActorRef, orgId: string, bundleName: string, scope: Scope): Promise<unknown>;
  putPersonalConnector(actor: ActorRef, orgId: string, memberId: string, spec: PersonalConnectorSpec): Promise<Connection>;
  deletePersonalConnector(actor: ActorRef, memberId: string, name: string): Promise<unknown>;
  listPersonalConnectors(memberId: string): Promise<Connection[]>;
  policyRevision(orgId: string): Promise<number>;
}
