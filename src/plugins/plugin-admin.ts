import type { Kysely } from 'kysely';
import { actorFields, type ActorRef } from '../access/actor.js';
import { notFound } from '../access/errors.js';
import { scopeKey, type Scope } from '../access/model.js';
import { getOrg } from '../access/orgs-repo.js';
import { getChannel, getWorkspace } from '../access/workspaces-repo.js';
import type { AuditLog } from '../audit/log.js';
import { invalidInput } from '../errors.js';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import { encodePlugin } from './plugin-blob.js';
import { checkLayout, type PluginManifest } from './plugin-layout.js';
import { checkTree, pluginNameProblem, plainLabel, type PathLabel, type PluginFile } from './plugin-tree.js';
import * as repo from './plugins-repo.js';

export interface PluginSummary {
  name: string;
  /** sha256 hex of the plugin's canonical encoding. */
  digest: string;
  manifest: PluginManifest;
  attachments: Scope[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface PluginFileInfo {
  path: string;
  mode: '0644' | '0755';
  size: number;
}

/** What `add` did: a new plugin, a new digest for an existing one, or nothing (same digest). */
export type AddOutcome = 'add' | 'replace' | 'unchanged';

/**
 * The one place that changes plugins (the CLI and the API both call it).
 * Every change is one write transaction — serialised on the `plugins` lock, so
 * a blob is never dropped while another change starts to use it — holding the
 * rows and one `admin-change` audit event (target `plugin:<name>`, action
 * add | replace | remove | attach | detach, the digest). A change of nothing
 * writes nothing. Plugins do not change egress policy: no revision bump.
 */
export class PluginAdmin {
  constructor(
    private readonly store: ControlStore,
    private readonly audit: AuditLog,
  ) {}

  /**
   * Validates the tree (paths, sizes, the Claude Code layout) and stores it
   * under `name`, replacing the plugin of that name if its digest differs.
   * `label` names a file in messages, `root` the plugin as a whole.
   */
  async add(actor: ActorRef, orgId: string, name: string, files: readonly PluginFile[], where: { label?: PathLabel; root?: string } = {}): Promise<{ outcome: AddOutcome; plugin: PluginSummary }> {
    const problem = pluginNameProblem(name);
    if (problem) throw invalidInput(`plugin name ${problem}`, 'invalid_plugin');
    const tree = checkTree(files, where.label ?? plainLabel, where.root);
    const manifest = checkLayout(tree, where.label ?? plainLabel, where.root);
    const encoded = encodePlugin(tree);
    const outcome = await this.change(async (db) => {
      if (!(await getOrg(db, orgId))) throw notFound(`org ${orgId}`);
      const before = await repo.getPlugin(db, orgId, name);
      if (before?.digest === encoded.digest) return { result: 'unchanged' as const, event: undefined };
      await repo.putBlob(db, encoded);
      await repo.putPlugin(db, { orgId, name, digest: encoded.digest, manifest, actor: actorFields(actor).actor });
      if (before) await repo.dropBlobIfUnused(db, before.digest);
      const action = before ? ('replace' as const) : ('add' as const);
      return {
        result: action,
        event: { orgId, name, action, fields: ['digest', 'manifest'], digest: encoded.digest, ...(before ? { previous: `sha256:${before.digest}` } : {}) },
      };
    }, actor);
    return { outcome, plugin: (await this.get(orgId, name))! };
  }

  async list(orgId: string): Promise<PluginSummary[]> {
    const attachments = await repo.attachmentsByPlugin(this.store.db, orgId);
    return (await repo.listPlugins(this.store.db, orgId)).map((p) => summary(p, attachments.get(p.id) ?? []));
  }

  async get(orgId: string, name: string): Promise<PluginSummary | undefined> {
    const plugin = await repo.getPlugin(this.store.db, orgId, name);
    if (!plugin) return undefined;
    return summary(plugin, (await repo.attachmentsByPlugin(this.store.db, orgId)).get(plugin.id) ?? []);
  }

  /** The plugin's files as stored (the blob decoded and verified), with their sizes. */
  async files(orgId: string, name: string): Promise<PluginFileInfo[]> {
    const plugin = await this.required(this.store.db, orgId, name);
    const files = await repo.storedFiles(this.store.db, plugin);
    return files.map((f) => ({ path: f.path, mode: f.mode === 0o755 ? '0755' : '0644', size: f.data.length }));
  }

  async remove(actor: ActorRef, orgId: string, name: string): Promise<boolean> {
    return this.change(async (db) => {
      const plugin = await repo.getPlugin(db, orgId, name);
      if (!plugin) return { result: false, event: undefined };
      await repo.deletePlugin(db, orgId, name);
      await repo.dropBlobIfUnused(db, plugin.digest);
      return { result: true, event: { orgId, name, action: 'remove', fields: [], digest: plugin.digest } };
    }, actor);
  }

  /** Idempotent: true when the attachment is new (and only then an event). */
  async attach(actor: ActorRef, orgId: string, name: string, scope: Scope): Promise<boolean> {
    return this.change(async (db) => {
      const plugin = await this.required(db, orgId, name);
      await this.checkScope(db, orgId, scope);
      const added = await repo.attachPlugin(db, plugin.id, repo.storedScope(orgId, scope));
      return { result: added, event: added ? { orgId, name, action: 'attach', fields: ['attachments'], digest: plugin.digest, scope: scopeKey(scope) } : undefined };
    }, actor);
  }

  /** True when there was such an attachment. */
  async detach(actor: ActorRef, orgId: string, name: string, scope: Scope): Promise<boolean> {
    return this.change(async (db) => {
      const plugin = await this.required(db, orgId, name);
      const removed = await repo.detachPlugin(db, plugin.id, repo.storedScope(orgId, scope));
      return { result: removed, event: removed ? { orgId, name, action: 'detach', fields: ['attachments'], digest: plugin.digest, scope: scopeKey(scope) } : undefined };
    }, actor);
  }

  private async required(db: Kysely<Database>, orgId: string, name: string): Promise<repo.StoredPlugin> {
    const plugin = await repo.getPlugin(db, orgId, name);
    if (!plugin) throw notFound(`plugin "${name}"`);
    return plugin;
  }

  /** A workspace or channel of this org (another org's is as good as missing). */
  private async checkScope(db: Kysely<Database>, orgId: string, scope: Scope): Promise<void> {
    if (scope.kind === 'workspace') {
      const ws = await getWorkspace(db, scope.id);
      if (!ws || ws.orgId !== orgId) throw notFound(`workspace ${scope.id}`);
    } else if (scope.kind === 'channel') {
      const channel = await getChannel(db, scope.id);
      const ws = channel && (await getWorkspace(db, channel.workspaceId));
      if (!ws || ws.orgId !== orgId) throw notFound(`channel ${scope.id}`);
    }
  }

  /** fn's rows and its audit event in one transaction: the record commits with the change or not at all. */
  private async change<T>(fn: (db: Kysely<Database>) => Promise<{ result: T; event: PluginEvent | undefined }>, actor: ActorRef): Promise<T> {
    return withWriteTransaction(this.store, 'plugins', async (db) => {
      const { result, event } = await fn(db);
      if (event) {
        const { orgId, name, digest, ...rest } = event;
        await this.audit.appendIn(db, [{ type: 'admin-change', ...actorFields(actor), org: orgId, target: `plugin:${name}`, ...rest, digest: `sha256:${digest}` }]);
      }
      return result;
    });
  }
}

interface PluginEvent {
  orgId: string;
  name: string;
  action: 'add' | 'replace' | 'remove' | 'attach' | 'detach';
  fields: string[];
  digest: string;
  previous?: string;
  scope?: string;
}

function summary(p: repo.StoredPlugin, attachments: Scope[]): PluginSummary {
  return { name: p.name, digest: p.digest, manifest: p.manifest, attachments, createdBy: p.createdBy, createdAt: p.createdAt, updatedAt: p.updatedAt };
}
