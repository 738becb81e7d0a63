import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Scope } from '../../access/model.js';
import { MAX_CANONICAL_BYTES } from '../../plugins/plugin-blob.js';
import { PluginAdmin, type PluginSummary } from '../../plugins/plugin-admin.js';
import { PLUGIN_LIMITS, PLUGIN_NAME_PATTERN, type PluginFile } from '../../plugins/plugin-tree.js';
import type { ServerDeps } from '../deps.js';
import { notFound } from '../http-errors.js';
import { actorOf } from '../principal.js';
import { route } from '../route.js';

/** A whole plugin in one JSON body: its files in base64 take 4/3 of their bytes, plus their paths. */
const UPLOAD_BODY_LIMIT = MAX_CANONICAL_BYTES + 64 * 1024;

const nameParams = z.strictObject({ name: z.string().regex(PLUGIN_NAME_PATTERN, 'expected a plugin name') });
const scopeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('org') }),
  z.strictObject({ kind: z.literal('workspace'), id: z.string().min(1).max(200) }),
  z.strictObject({ kind: z.literal('channel'), id: z.string().min(1).max(200) }),
]);
const scopeBody = z.strictObject({ scope: scopeSchema });
const uploadBody = z.strictObject({
  name: z.string().regex(PLUGIN_NAME_PATTERN, `expected ${PLUGIN_NAME_PATTERN.source} (lower-case letters, digits and hyphens)`),
  files: z
    .array(
      z.strictObject({
        path: z.string().max(PLUGIN_LIMITS.maxPathBytes),
        mode: z.enum(['0644', '0755']).optional(),
        data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
      }),
    )
    .max(PLUGIN_LIMITS.maxFiles, `a plugin has at most ${PLUGIN_LIMITS.maxFiles} files`),
});

/** Claude Code plugins and where they are attached (docs/PLUGINS.md): admins, as for bundles. */
export function pluginRoutes(deps: ServerDeps) {
  const plugins = new PluginAdmin(deps.store, deps.audit);
  async function pluginOf(orgId: string, name: string): Promise<PluginSummary> {
    const plugin = await plugins.get(orgId, name);
    if (!plugin) throw notFound(`plugin "${name}" not found`);
    return plugin;
  }

  return async (app: FastifyInstance) => {
    // Only the upload takes a body larger than the server's default cap.
    app.addHook('onRoute', (options) => {
      if (options.method === 'POST' && options.url.endsWith('/plugins')) options.bodyLimit = UPLOAD_BODY_LIMIT;
    });

    route(app, {
      method: 'GET',
      url: '/plugins',
      tag: 'plugins',
      summary: 'List plugins: digest, plugin.json, component counts, attachments',
      role: 'admin',
      handler: async ({ principal }) => (await plugins.list(principal.orgId)).map(view),
    });
    route(app, {
      method: 'POST',
      url: '/plugins',
      tag: 'plugins',
      summary: 'Add or replace a plugin from its files (base64), validated as `tagbox plugin add` validates a directory; 201 when new, 200 when replaced or unchanged (`change`: add, replace or unchanged)',
      role: 'admin',
      body: uploadBody,
      handler: async ({ body, principal, reply }) => {
        const files: PluginFile[] = body.files.map((f) => ({ path: f.path, mode: f.mode === '0755' ? 0o755 : 0o644, data: Buffer.from(f.data, 'base64') }));
        const { outcome, plugin } = await plugins.add(actorOf(principal), principal.orgId, body.name, files, { label: (p) => `body.files ${JSON.stringify(p)}`, root: 'body.files' });
        return reply.status(outcome === 'add' ? 201 : 200).send({ ...view(plugin), change: outcome });
      },
    });
    route(app, {
      method: 'GET',
      url: '/plugins/:name',
      tag: 'plugins',
      summary: 'One plugin: its manifest, its files with their sizes, its attachments',
      role: 'admin',
      params: nameParams,
      handler: async ({ params, principal }) => {
        const plugin = await pluginOf(principal.orgId, params.name);
        return { ...view(plugin), files: await plugins.files(principal.orgId, params.name) };
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/plugins/:name',
      tag: 'plugins',
      summary: 'Remove a plugin (and detach it everywhere)',
      role: 'admin',
      status: 204,
      params: nameParams,
      handler: async ({ params, principal }) => {
        if (!(await plugins.remove(actorOf(principal), principal.orgId, params.name))) throw notFound(`plugin "${params.name}" not found`);
      },
    });
    route(app, {
      method: 'POST',
      url: '/plugins/:name/attachments',
      tag: 'plugins',
      summary: 'Attach a plugin to the org, a workspace or a channel (idempotent)',
      role: 'admin',
      params: nameParams,
      body: scopeBody,
      handler: async ({ params, body, principal }) => {
        await plugins.attach(actorOf(principal), principal.orgId, params.name, body.scope as Scope);
        return view(await pluginOf(principal.orgId, params.name));
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/plugins/:name/attachments',
      tag: 'plugins',
      summary: 'Detach a plugin from a scope',
      role: 'admin',
      params: nameParams,
      body: scopeBody,
      handler: async ({ params, body, principal }) => {
        await plugins.detach(actorOf(principal), principal.orgId, params.name, body.scope as Scope);
        return view(await pluginOf(principal.orgId, params.name));
      },
    });
  };
}

/** A plugin as the API shows it: attachments as {kind, id?}. */
function view(p: PluginSummary) {
  return {
    name: p.name,
    digest: p.digest,
    plugin: p.manifest.plugin,
    counts: p.manifest.counts,
    fileCount: p.manifest.files,
    bytes: p.manifest.bytes,
    attachments: p.attachments.map((s) => (s.kind === 'org' ? { kind: 'org' } : { kind: s.kind, id: s.id })),
    createdBy: p.createdBy,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}
