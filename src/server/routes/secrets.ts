import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { scopesOf } from '../../access/bundles-repo.js';
import { isPersonalSecretName } from '../../access/personal-secrets.js';
import { CREDENTIAL_KINDS } from '../../vault/kinds.js';
import { MAX_SECRET_BYTES, SECRET_NAME_PATTERN } from '../../vault/names.js';
import type { ServerDeps } from '../deps.js';
import { forbidden, notFound } from '../http-errors.js';
import { route } from '../route.js';
import { auditActor } from '../principal.js';

const nameParams = z.strictObject({
  name: z.string().regex(SECRET_NAME_PATTERN, 'expected a secret name: a-z 0-9 . _ -, starting with a letter or digit, at most 63 characters'),
});
export const secretValue = z
  .string()
  .min(1, 'expected a non-empty value')
  .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_SECRET_BYTES, `expected at most ${MAX_SECRET_BYTES} bytes`);

/**
 * Org secrets: write-only. A value goes in on PUT and is sealed to the vault's
 * public key at once; nothing here can return it. Admins only. Members' own
 * secrets live under /me/connectors and are not listed or writable here.
 */
export function secretRoutes(deps: ServerDeps) {
  function orgSecret(name: string): string {
    // Written only through the member's own connector route: no admin creates, overwrites or deletes one.
    if (isPersonalSecretName(name)) throw forbidden(`name: "${name}" is in the personal. namespace of members' personal connector secrets; only the member can write it, through /me/connectors`);
    return name;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/secrets',
      tag: 'secrets',
      summary: 'Secret metadata (never values), and which connections send each one',
      role: 'admin',
      handler: async ({ principal }) => {
        const [secrets, bundles] = await Promise.all([(await deps.sealer()).list(), deps.access.listBundles(principal.orgId)]);
        const scopes = new Map(await Promise.all(bundles.map(async (b) => [b.id, await scopesOf(deps.store.db, b.id)] as const)));
        return secrets
          .filter((s) => !isPersonalSecretName(s.name))
          .map((s) => {
            const usedBy = bundles.flatMap((b) =>
              b.connections.filter((c) => c.secret === s.name).map((c) => ({ bundle: b.name, connection: c.name, scopes: scopes.get(b.id) ?? [] })),
            );
            // "Sent" means some policy in force can inject it: its bundle is attached somewhere.
            return { ...s, usedBy, sent: usedBy.some((u) => u.scopes.length > 0) };
          });
      },
    });
    route(app, {
      method: 'PUT',
      url: '/secrets/:name',
      tag: 'secrets',
      summary: 'Create a secret or rotate it to a new version (the value is sealed and never shown again)',
      role: 'admin',
      params: nameParams,
      body: z.strictObject({ value: secretValue, kind: z.enum(CREDENTIAL_KINDS).optional() }),
      handler: async ({ params, body, principal }) => {
        const name = orgSecret(params.name);
        const result = await (await deps.sealer()).put(name, Buffer.from(body.value, 'utf8'), body.kind ?? 'static');
        await deps.audit.append({
          type: 'admin-change',
          ...auditActor(principal),
          outcome: 'ok',
          action: result.created ? 'secret.create' : 'secret.rotate',
          target: `secret:${name}`,
          fields: ['value', ...(body.kind ? ['kind'] : [])],
          kind: result.kind,
          version: result.version,
        });
        const meta = await (await deps.sealer()).metadata(name);
        return meta ?? { name: result.name, kind: result.kind, version: result.version };
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/secrets/:name',
      tag: 'secrets',
      summary: 'Remove a secret and all its versions',
      role: 'admin',
      status: 204,
      params: nameParams,
      handler: async ({ params, principal }) => {
        const name = orgSecret(params.name);
        if (!(await (await deps.sealer()).delete(name))) throw notFound(`secret "${name}" not found`);
        await deps.audit.append({ type: 'admin-change', ...auditActor(principal), outcome: 'ok', action: 'secret.remove', target: `secret:${name}` });
      },
    });
  };
}
