import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { applyBundleSpecs, bundleSpecsFromText, exportBundlesYaml } from '../../access/bundles-as-code.js';
import { scopesOf } from '../../access/bundles-repo.js';
import type { Bundle, BundleSpec, DomainEntry, Scope } from '../../access/model.js';
import { parseScopeKey } from '../../access/model.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import { bundleSchema, connectionSchema, hostEntrySchema, NAME_PATTERN } from '../../policy/bundle-schema.js';
import type { ServerDeps } from '../deps.js';
import { badRequest, notFound } from '../http-errors.js';
import { actorOf, type Principal } from '../principal.js';
import { route } from '../route.js';

const nameParams = z.strictObject({ name: z.string().regex(NAME_PATTERN, 'expected a bundle name') });
// CONTRACT.md's bundle shape without the name (it is in the path); secrets by vault name only.
const bundleBody = z.strictObject({
  description: z.string().max(1000).optional(),
  domains: z.array(hostEntrySchema).optional(),
  connections: z.array(connectionSchema).optional(),
});
const scopeBody = z.strictObject({
  scope: z.string().refine((s) => parseScopeKey(s) !== undefined, 'expected "org", "workspace:<id>" or "channel:<id>"'),
});

const applyBody = z.strictObject({
  yaml: z.string({ error: 'expected the bundle file as text (YAML)' }),
  dryRun: z.boolean().optional(),
  prune: z.boolean().optional(),
});

/** Access bundles and where they are attached: admins. */
export function bundleRoutes(deps: ServerDeps) {
  async function withScopes(bundle: Bundle) {
    return { ...bundle, scopes: await scopesOf(deps.store.db, bundle.id) };
  }
  async function bundleOf(principal: Principal, name: string) {
    const bundle = await deps.access.getBundle(principal.orgId, name);
    if (!bundle) throw notFound(`bundle "${name}" not found`);
    return bundle;
  }
  /** The scope, checked to be inside the caller's org. */
  async function scopeOf(principal: Principal, key: string): Promise<Scope> {
    const scope = parseScopeKey(key)!;
    if (scope.kind === 'workspace') {
      const w = await getWorkspace(deps.store.db, scope.id);
      if (!w || w.orgId !== principal.orgId) throw notFound(`scope: workspace "${scope.id}" not found`);
    } else if (scope.kind === 'channel') {
      const c = await getChannel(deps.store.db, scope.id);
      const w = c && (await getWorkspace(deps.store.db, c.workspaceId));
      if (!w || w.orgId !== principal.orgId) throw notFound(`scope: channel "${scope.id}" not found`);
    }
    return scope;
  }

  return async (app: FastifyInstance) => {
    // Registered before /bundles/:name so that "apply" and "export" are never read as bundle names.
    route(app, {
      method: 'POST',
      url: '/bundles/apply',
      tag: 'bundles',
      summary: 'Make the stored bundles match a bundle file (YAML, as `tagbox bundle apply`): one transaction; dryRun plans only; prune deletes bundles the file lacks; attachments are kept',
      role: 'admin',
      body: applyBody,
      handler: async ({ body, principal }) => {
        // The same parser as the CLI's file: errors name the line and the field (source "body.yaml").
        const specs = bundleSpecsFromText(body.yaml, 'body.yaml');
        return applyBundleSpecs(deps.access, actorOf(principal), principal.orgId, specs, { prune: body.prune ?? false, dryRun: body.dryRun ?? false });
      },
    });
    route(app, {
      method: 'GET',
      url: '/bundles/export',
      tag: 'bundles',
      summary: 'Every stored bundle as a bundle file (YAML, as `tagbox bundle export`); applying it changes nothing',
      role: 'admin',
      handler: async ({ principal }) => ({ yaml: await exportBundlesYaml(deps.access, principal.orgId) }),
    });
    route(app, {
      method: 'GET',
      url: '/bundles',
      tag: 'bundles',
      summary: 'List access bundles',
      role: 'admin',
      handler: async ({ principal }) => Promise.all((await deps.access.listBundles(principal.orgId)).map(withScopes)),
    });
    route(app, {
      method: 'GET',
      url: '/bundles/:name',
      tag: 'bundles',
      summary: 'One access bundle, with the scopes it is attached to',
      role: 'admin',
      params: nameParams,
      handler: async ({ params, principal }) => withScopes(await bundleOf(principal, params.name)),
    });
    route(app, {
      method: 'PUT',
      url: '/bundles/:name',
      tag: 'bundles',
      summary: 'Create or replace an access bundle (domains and connections; secrets by vault name)',
      role: 'admin',
      params: nameParams,
      body: bundleBody,
      handler: async ({ params, body, principal }) => {
        const spec = toSpec(params.name, body);
        return withScopes(await deps.access.putBundle(actorOf(principal), principal.orgId, spec));
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/bundles/:name',
      tag: 'bundles',
      summary: 'Delete an access bundle (and detach it everywhere)',
      role: 'admin',
      status: 204,
      params: nameParams,
      handler: async ({ params, principal }) => {
        await bundleOf(principal, params.name);
        await deps.access.deleteBundle(actorOf(principal), principal.orgId, params.name);
      },
    });
    route(app, {
      method: 'POST',
      url: '/bundles/:name/scopes',
      tag: 'bundles',
      summary: 'Attach a bundle to the org, a workspace or a channel',
      role: 'admin',
      params: nameParams,
      body: scopeBody,
      handler: async ({ params, body, principal }) => {
        await bundleOf(principal, params.name);
        await deps.access.attach(actorOf(principal), principal.orgId, params.name, await scopeOf(principal, body.scope));
        return withScopes(await bundleOf(principal, params.name));
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/bundles/:name/scopes',
      tag: 'bundles',
      summary: 'Detach a bundle from a scope',
      role: 'admin',
      params: nameParams,
      body: scopeBody,
      handler: async ({ params, body, principal }) => {
        await bundleOf(principal, params.name);
        await deps.access.detach(actorOf(principal), principal.orgId, params.name, await scopeOf(principal, body.scope));
        return withScopes(await bundleOf(principal, params.name));
      },
    });
  };
}

/** Whole-bundle checks (duplicate connection names) with the policy module's own schema. */
function toSpec(name: string, body: z.infer<typeof bundleBody>): BundleSpec {
  const checked = bundleSchema.safeParse({ name, domains: body.domains ?? [], connections: body.connections ?? [] });
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw badRequest(`body.${issue.path.map(String).join('.')}: ${issue.message}`);
  }
  const website = (e: DomainEntry) => (e.ports ? e : e.host);
  return {
    name,
    ...(body.description !== undefined ? { description: body.description } : {}),
    domains: checked.data.domains,
    connections: checked.data.connections.map((c) => ({ ...c, allowedWebsites: c.allowedWebsites.map(website) })),
  };
}
