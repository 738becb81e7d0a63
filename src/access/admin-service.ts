import type { Kysely } from 'kysely';
import type { AuditLog } from '../audit/log.js';
import { invalidInput, TagboxError } from '../errors.js';
import { compilePolicy } from '../policy/compile.js';
import { validateBundles, validatePersonalConnector } from '../policy/bundle-file.js';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { actorFields, type ActorRef } from './actor.js';
import * as bundlesRepo from './bundles-repo.js';
import { planBundles, type BundleChange } from './bundle-diff.js';
import { scopeBundles } from './effective-policy.js';
import { notFound } from './errors.js';
import * as membersRepo from './members-repo.js';
import type { Bundle, BundleSpec, Channel, Connection, ConnectionSpec, Member, NewWorkspace, Org, PersonalConnectorSpec, Scope, Workspace } from './model.js';
import { scopeKey } from './model.js';
import * as orgsRepo from './orgs-repo.js';
import { personalSecretName } from './personal-secrets.js';
import type { OrgSettings } from './orgs-repo.js';
import { bumpRevision, policyEvents, readRevision } from './policy-revision.js';
import { connectionInput, connectionSpecOf, fromPolicyBundle, fromPolicyConnection, specAsPolicyInput, specOf, toPolicyBundle } from './spec.js';
import { accessTransaction, lockNamed } from './transaction.js';
import * as workspacesRepo from './workspaces-repo.js';
import { saveSlackSettings } from '../surfaces/slack/slack-workspaces-repo.js';

export type { OrgSettings } from './orgs-repo.js';

/** What one change did, for its admin-change audit event. Field names only, never values. */
interface Change {
  orgId: string;
  target: string;
  action: string;
  fields: string[];
  /** For attach/detach: the scope key. */
  scope?: string;
}

/**
 * The one place that changes access. Every method is one transaction: the
 * repository change, a bump of the org's policy revision (what running
 * proxies watch), and then one `admin-change` audit event naming the actor,
 * the target and the fields changed — never a secret value (connections hold
 * vault names only). Bundle specs are validated, and the would-be policy of
 * every place they reach compiled, before anything commits: an invalid or
 * ambiguous change is an exit-2 error naming the field, and is not stored.
 */
export class AccessAdmin {
  constructor(
    private readonly store: ControlStore,
    private readonly audit: AuditLog,
  ) {}

  /** The org of a one-org deployment; created once even when several processes start together. */
  async ensureDefaultOrg(name = 'default'): Promise<Org> {
    const existing = (await orgsRepo.listOrgs(this.store.db))[0];
    if (existing) return existing;
    return accessTransaction(this.store, async (db) => {
      await lockNamed(db, this.store, 'default_org');
      const found = (await orgsRepo.listOrgs(db))[0];
      if (found) return found;
      const org = await orgsRepo.createOrg(db, name);
      await bumpRevision(db, this.store.dialect, org.id);
      await this.audit.appendIn(db, [{ type: 'admin-change', actor: 'system', org: org.id, target: `org:${org.id}`, action: 'create', fields: ['name'] }]);
      return org;
    });
  }

  async getOrg(orgId: string): Promise<Org> {
    const org = await orgsRepo.getOrg(this.store.db, orgId);
    if (!org) throw notFound(`org ${orgId}`);
    return org;
  }

  async updateOrgSettings(actor: ActorRef, orgId: string, changes: Partial<OrgSettings>): Promise<Org> {
    validateSettings(changes);
    return this.change(actor, async (db) => {
      const before = await orgsRepo.getOrg(db, orgId);
      if (!before) throw notFound(`org ${orgId}`);
      const fields = (Object.keys(changes) as (keyof OrgSettings)[]).filter(
        (k) => changes[k] !== undefined && JSON.stringify(changes[k]) !== JSON.stringify(before[k]),
      );
      const org = (await orgsRepo.updateOrgSettings(db, orgId, changes))!;
      return { result: org, change: { orgId, target: `org:${orgId}`, action: 'update-settings', fields } };
    });
  }

  async createWorkspace(actor: ActorRef, input: NewWorkspace): Promise<Workspace> {
    return this.change(actor, async (db) => {
      if (!(await orgsRepo.getOrg(db, input.orgId))) throw notFound(`org ${input.orgId}`);
      const { slack, ...fields } = input;
      const ws = await workspacesRepo.createWorkspace(db, fields);
      // A Slack team's settings (which vault names hold its tokens) come with it, in the same transaction.
      if (slack) await saveSlackSettings(db, ws.id, slack);
      const changed = ['kind', 'externalId', 'name', ...(slack ? ['slack'] : [])];
      return { result: slack ? { ...ws, slack } : ws, change: { orgId: input.orgId, target: `workspace:${ws.id}`, action: 'create', fields: changed } };
    });
  }

  async getWorkspace(workspaceId: string): Promise<Workspace> {
    const ws = await workspacesRepo.getWorkspace(this.store.db, workspaceId);
    if (!ws) throw notFound(`workspace ${workspaceId}`);
    return ws;
  }

  listWorkspaces(orgId: string): Promise<Workspace[]> {
    return workspacesRepo.listWorkspaces(this.store.db, orgId);
  }

  async createChannel(actor: ActorRef, input: { workspaceId: string; externalId: string; name: string; isPrivate?: boolean }): Promise<Channel> {
    return this.change(actor, async (db) => {
      const ws = await workspacesRepo.getWorkspace(db, input.workspaceId);
      if (!ws) throw notFound(`workspace ${input.workspaceId}`);
      const channel = await workspacesRepo.createChannel(db, input);
      return { result: channel, change: { orgId: ws.orgId, target: `channel:${channel.id}`, action: 'create', fields: ['externalId', 'name', 'isPrivate'] } };
    });
  }

  async getChannel(channelId: string): Promise<Channel> {
    const channel = await workspacesRepo.getChannel(this.store.db, channelId);
    if (!channel) throw notFound(`channel ${channelId}`);
    return channel;
  }

  listChannels(workspaceId: string): Promise<Channel[]> {
    return workspacesRepo.listChannels(this.store.db, workspaceId);
  }

  async createMember(
    actor: ActorRef,
    input: { workspaceId: string; externalId: string; displayName: string; hasAccount?: boolean; isGuest?: boolean; roles?: string[] },
  ): Promise<Member> {
    return this.change(actor, async (db) => {
      const ws = await workspacesRepo.getWorkspace(db, input.workspaceId);
      if (!ws) throw notFound(`workspace ${input.workspaceId}`);
      const member = await membersRepo.createMemberIn(db, input);
      const fields = ['externalId', 'displayName', 'hasAccount', 'isGuest', ...(input.roles?.length ? ['roles'] : [])];
      return { result: member, change: { orgId: ws.orgId, target: `member:${member.id}`, action: 'create', fields } };
    });
  }

  listMembers(workspaceId: string): Promise<Member[]> {
    return membersRepo.listMembers(this.store.db, workspaceId);
  }

  async getMember(memberId: string): Promise<Member> {
    const member = await membersRepo.getMember(this.store.db, memberId);
    if (!member) throw notFound(`member ${memberId}`);
    return member;
  }

  /**
   * Replaces a member's roles. The org always keeps an owner: removing the
   * last one is refused (a deployment without one would mint a new Owner and
   * print its token at the next start).
   */
  async setMemberRoles(actor: ActorRef, memberId: string, roles: string[]): Promise<Member> {
    return this.change(actor, async (db) => {
      const orgId = await this.orgOfMember(db, memberId);
      const before = (await membersRepo.getMember(db, memberId))!;
      const losesOwner = before.roles.includes('owner') && !roles.includes('owner');
      if (losesOwner) await lockNamed(db, this.store, 'owners');
      await membersRepo.setMemberRolesIn(db, memberId, roles);
      if (losesOwner && (await membersRepo.countOwners(db, orgId)) === 0) {
        throw new TagboxError(`roles: member ${memberId} is the org's last owner; make another owner first`, { exitCode: 2, code: 'last_owner_conflict' });
      }
      const member = (await membersRepo.getMember(db, memberId))!;
      return { result: member, change: { orgId, target: `member:${memberId}`, action: 'set-roles', fields: ['roles'] } };
    });
  }

  /** Creates or replaces a bundle whole (its attachments are kept). */
  async putBundle(actor: ActorRef, orgId: string, spec: BundleSpec): Promise<Bundle> {
    const canonical = { ...fromPolicyBundle(validateBundles([specAsPolicyInput(spec)], `bundle "${spec.name}"`)[0]!), ...(spec.description ? { description: spec.description } : {}) };
    return this.change(actor, async (db) => {
      if (!(await orgsRepo.getOrg(db, orgId))) throw notFound(`org ${orgId}`);
      const before = await bundlesRepo.getBundleByName(db, orgId, spec.name);
      const id = await bundlesRepo.putBundleIn(db, orgId, canonical);
      await this.vetScopes(db, orgId, await bundlesRepo.scopesOf(db, id));
      const bundle = (await bundlesRepo.getBundleByName(db, orgId, spec.name))!;
      const fields = before ? bundleFieldsChanged(specOf(before), specOf(bundle)) : ['description', 'domains', 'connections'].filter((f) => f !== 'description' || canonical.description);
      return { result: bundle, change: { orgId, target: `bundle:${spec.name}`, action: before ? 'update' : 'create', fields } };
    });
  }

  /**
   * Declarative apply (what `tagbox bundle apply` runs): makes the org's bundles
   * match `specs` in one transaction — all or nothing, and vetted on the final
   * state, so moving a connection from one bundle to another is not refused for
   * an ambiguity that only the halfway state had. With prune, bundles not in
   * `specs` are deleted. Attachments and descriptions of kept bundles stay.
   * One admin-change event per bundle changed; the plan is returned.
   */
  async applyBundles(actor: ActorRef, orgId: string, specs: BundleSpec[], options: { prune?: boolean; dryRun?: boolean } = {}): Promise<BundleChange[]> {
    const wanted = specs.map((spec, i) => fromPolicyBundle(validateBundles([specAsPolicyInput(spec)], `bundles[${i}] "${spec.name}"`)[0]!));
    const names = new Set<string>();
    for (const spec of wanted) {
      if (names.has(spec.name)) throw invalidInput(`bundle "${spec.name}" is given twice`, 'invalid_bundles');
      names.add(spec.name);
    }
    if (options.dryRun) {
      const current = (await bundlesRepo.listBundles(this.store.db, orgId)).map(specOf);
      return planBundles(current, wanted, options.prune ?? false);
    }
    return this.change(actor, async (db) => {
      if (!(await orgsRepo.getOrg(db, orgId))) throw notFound(`org ${orgId}`);
      const stored = await bundlesRepo.listBundles(db, orgId);
      const plan = planBundles(stored.map(specOf), wanted, options.prune ?? false);
      const touched = new Set<string>();
      for (const step of plan) {
        if (step.op === 'delete') {
          await bundlesRepo.deleteBundle(db, orgId, step.name);
          continue;
        }
        const description = stored.find((b) => b.name === step.name)?.description;
        const id = await bundlesRepo.putBundleIn(db, orgId, { ...step.spec, ...(description ? { description } : {}) });
        for (const scope of await bundlesRepo.scopesOf(db, id)) touched.add(scope);
      }
      await this.vetScopes(db, orgId, [...touched]);
      const changes: Change[] = plan.map((step) =>
        step.op === 'delete'
          ? { orgId, target: `bundle:${step.name}`, action: 'delete', fields: [] }
          : { orgId, target: `bundle:${step.name}`, action: step.op, fields: step.op === 'update' ? step.fields : ['domains', 'connections'] },
      );
      return { result: plan, change: changes };
    });
  }

  async deleteBundle(actor: ActorRef, orgId: string, name: string): Promise<boolean> {
    return this.change(actor, async (db) => {
      const deleted = await bundlesRepo.deleteBundle(db, orgId, name);
      return { result: deleted, change: deleted ? { orgId, target: `bundle:${name}`, action: 'delete', fields: [] } : undefined };
    });
  }

  listBundles(orgId: string): Promise<Bundle[]> {
    return bundlesRepo.listBundles(this.store.db, orgId);
  }

  getBundle(orgId: string, name: string): Promise<Bundle | undefined> {
    return bundlesRepo.getBundleByName(this.store.db, orgId, name);
  }

  /** The scopes a bundle is attached to (`org`, `workspace:<id>`, `channel:<id>`). */
  async bundleScopes(orgId: string, name: string): Promise<string[]> {
    const bundle = await this.getBundle(orgId, name);
    if (!bundle) throw notFound(`bundle "${name}"`);
    return bundlesRepo.scopesOf(this.store.db, bundle.id);
  }

  /** Idempotent: attaching twice is one attachment (and one event only when it changed something). */
  async attach(actor: ActorRef, orgId: string, bundleName: string, scope: Scope): Promise<void> {
    await this.change(actor, async (db) => {
      const bundle = await bundlesRepo.getBundleByName(db, orgId, bundleName);
      if (!bundle) throw notFound(`bundle "${bundleName}"`);
      await this.checkScope(db, orgId, scope);
      const had = (await bundlesRepo.scopesOf(db, bundle.id)).includes(scopeKey(scope));
      await bundlesRepo.attachBundle(db, bundle.id, scope);
      await this.vetScopes(db, orgId, [scopeKey(scope)]);
      return { result: undefined, change: had ? undefined : { orgId, target: `bundle:${bundleName}`, action: 'attach', fields: ['scopes'], scope: scopeKey(scope) } };
    });
  }

  async detach(actor: ActorRef, orgId: string, bundleName: string, scope: Scope): Promise<boolean> {
    return this.change(actor, async (db) => {
      const bundle = await bundlesRepo.getBundleByName(db, orgId, bundleName);
      if (!bundle) throw notFound(`bundle "${bundleName}"`);
      const removed = await bundlesRepo.detachBundle(db, bundle.id, scope);
      return { result: removed, change: removed ? { orgId, target: `bundle:${bundleName}`, action: 'detach', fields: ['scopes'], scope: scopeKey(scope) } : undefined };
    });
  }

  /**
   * A member's own connector, usable only in their DMs. Its secret is always
   * the member's own (`personalSecretName`): a given `spec.secret` must be that
   * name, so no caller can point a connector at an org secret. Its websites
   * unlock no forbidden address (see personalConnectionSchema).
   */
  async putPersonalConnector(actor: ActorRef, orgId: string, memberId: string, spec: PersonalConnectorSpec): Promise<Connection> {
    const secret = personalSecretName(memberId, String(spec.name));
    const where = `personal connector "${String(spec.name)}"`;
    if (spec.secret !== undefined && spec.secret !== secret) {
      throw invalidInput(`${where}: secret: a personal connector always uses its own secret ("${secret}"), not "${String(spec.secret)}"`, 'invalid_connector');
    }
    const canonical = fromPolicyConnection(validatePersonalConnector(connectionInput({ ...spec, secret }), where));
    return this.change(actor, async (db) => {
      const memberOrg = await this.orgOfMember(db, memberId);
      if (memberOrg !== orgId) throw notFound(`member ${memberId} in org ${orgId}`);
      const before = (await bundlesRepo.personalConnectors(db, memberId)).find((c) => c.name === spec.name);
      await bundlesRepo.putPersonalConnectorIn(db, orgId, memberId, canonical);
      const all = await bundlesRepo.personalConnectors(db, memberId);
      compilePolicy([toPolicyBundle({ name: 'personal', domains: [], connections: all })]);
      const fields = before ? connectionFieldsChanged(connectionSpecOf(before), canonical) : ['secret', 'allowedWebsites', 'inject', ...(canonical.narrow ? ['narrow'] : [])];
      return {
        result: all.find((c) => c.name === spec.name)!,
        change: { orgId, target: `member:${memberId}/connector:${spec.name}`, action: before ? 'update' : 'create', fields },
      };
    });
  }

  async deletePersonalConnector(actor: ActorRef, memberId: string, name: string): Promise<boolean> {
    return this.change(actor, async (db) => {
      const orgId = await this.orgOfMember(db, memberId);
      const deleted = await bundlesRepo.deletePersonalConnector(db, memberId, name);
      return { result: deleted, change: deleted ? { orgId, target: `member:${memberId}/connector:${name}`, action: 'delete', fields: [] } : undefined };
    });
  }

  listPersonalConnectors(memberId: string): Promise<Connection[]> {
    return bundlesRepo.personalConnectors(this.store.db, memberId);
  }

  /** Bumped by every access change of the org; 0 before the first. */
  policyRevision(orgId: string): Promise<number> {
    return readRevision(this.store.db, orgId);
  }

  /**
   * One access change: fn's repository work, the revision bump (with NOTIFY on
   * Postgres) and the admin-change audit events, all in one transaction — the
   * record commits with the change or not at all; then the in-process change
   * signal. A change of nothing (change undefined) bumps and records nothing.
   */
  private async change<T>(actor: ActorRef, fn: (db: Kysely<Database>) => Promise<{ result: T; change: Change | Change[] | undefined }>): Promise<T> {
    const { result, change } = await accessTransaction(this.store, async (db) => {
      const out = await fn(db);
      const changes = toList(out.change);
      for (const orgId of new Set(changes.map((c) => c.orgId))) await bumpRevision(db, this.store.dialect, orgId);
      await this.audit.appendIn(
        db,
        changes.map((c) => ({ type: 'admin-change' as const, ...actorFields(actor), org: c.orgId, target: c.target, action: c.action, fields: c.fields, ...(c.scope ? { scope: c.scope } : {}) })),
      );
      return out;
    });
    for (const orgId of new Set(toList(change).map((c) => c.orgId))) policyEvents.emit('change', orgId);
    return result;
  }

  private async orgOfMember(db: Kysely<Database>, memberId: string): Promise<string> {
    const member = await membersRepo.getMember(db, memberId);
    if (!member) throw notFound(`member ${memberId}`);
    return (await workspacesRepo.getWorkspace(db, member.workspaceId))!.orgId;
  }

  private async checkScope(db: Kysely<Database>, orgId: string, scope: Scope): Promise<void> {
    if (scope.kind === 'workspace') {
      const ws = await workspacesRepo.getWorkspace(db, scope.id);
      if (!ws || ws.orgId !== orgId) throw notFound(`workspace ${scope.id}`);
    } else if (scope.kind === 'channel') {
      const channel = await workspacesRepo.getChannel(db, scope.id);
      const ws = channel && (await workspacesRepo.getWorkspace(db, channel.workspaceId));
      if (!ws || ws.orgId !== orgId) throw notFound(`channel ${scope.id}`);
    }
  }

  /**
   * Compiles the would-be policy of every place the given scopes reach (the
   * org, each workspace, each channel), inside the uncommitted transaction: an
   * ambiguous pair of connections anywhere refuses the change.
   */
  private async vetScopes(db: Kysely<Database>, orgId: string, scopes: string[]): Promise<void> {
    if (scopes.length === 0) return;
    const workspaces = await workspacesRepo.listWorkspaces(db, orgId);
    const check = async (where: string, workspaceId?: string, channelId?: string) => {
      try {
        compilePolicy(await scopeBundles(db, orgId, workspaceId, channelId));
      } catch (error) {
        throw invalidInput(`refused: in ${where}: ${(error as Error).message}`, 'invalid_bundles');
      }
    };
    await check('the org');
    for (const ws of workspaces) {
      const channels = await workspacesRepo.listChannels(db, ws.id);
      const wsTouched = scopes.includes('org') || scopes.includes(`workspace:${ws.id}`);
      if (wsTouched) await check(`workspace "${ws.name}"`, ws.id);
      for (const ch of channels) {
        if (wsTouched || scopes.includes(`channel:${ch.id}`)) await check(`channel "${ch.name}"`, ws.id, ch.id);
      }
    }
  }
}

function toList(change: Change | Change[] | undefined): Change[] {
  return change === undefined ? [] : Array.isArray(change) ? change : [change];
}

function bundleFieldsChanged(before: BundleSpec, after: BundleSpec): string[] {
  const fields: string[] = [];
  if ((before.description ?? '') !== (after.description ?? '')) fields.push('description');
  if (JSON.stringify(before.domains) !== JSON.stringify(after.domains)) fields.push('domains');
  if (JSON.stringify(before.connections) !== JSON.stringify(after.connections)) fields.push('connections');
  return fields;
}

function connectionFieldsChanged(before: ConnectionSpec, after: ConnectionSpec): string[] {
  return (['secret', 'allowedWebsites', 'inject', 'narrow', 'plainHttp', 'github'] as const).filter((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]));
}

function validateSettings(changes: Partial<OrgSettings>): void {
  if (changes.memberAccess !== undefined && !['anyone', 'members', 'roles'].includes(changes.memberAccess)) {
    throw invalidInput(`memberAccess: expected one of anyone, members, roles (got "${String(changes.memberAccess)}")`);
  }
  if (changes.retentionDays !== undefined && (!Number.isInteger(changes.retentionDays) || changes.retentionDays < 1)) {
    throw invalidInput('retentionDays: expected a whole number of days, at least 1');
  }
  if (changes.memberAccessRoles !== undefined && (!Array.isArray(changes.memberAccessRoles) || changes.memberAccessRoles.some((r) => typeof r !== 'string' || r === ''))) {
    throw invalidInput('memberAccessRoles: expected a list of role names');
  }
}
