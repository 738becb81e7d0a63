import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Connection } from '../../access/model.js';
import { personalSecretName } from '../../access/personal-secrets.js';
import { hostEntrySchema, NAME_PATTERN, PERSONAL_CONNECTOR_NAME_PATTERN, personalConnectionSchema } from '../../policy/bundle-schema.js';
import { CREDENTIAL_KINDS } from '../../vault/kinds.js';
import type { ServerDeps } from '../deps.js';
import { describeZodError } from '../error-handler.js';
import { badRequest, notFound } from '../http-errors.js';
import { actorOf, auditActor, type Principal } from '../principal.js';
import { route } from '../route.js';
import { secretValue } from './secrets.js';

const nameParams = z.strictObject({ name: z.string().regex(NAME_PATTERN, 'expected a connector name') });
// What a new connector may be called: its derived secret name must be a valid vault name.
const newNameParams = z.strictObject({
  name: z.string().regex(PERSONAL_CONNECTOR_NAME_PATTERN, 'expected a connector name: lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, at most 37 characters'),
});
const connectorBody = z.strictObject({
  allowedWebsites: z.array(hostEntrySchema).min(1),
  inject: z.unknown(),
  narrow: z.unknown().optional(),
  /** The credential; sealed at once and never shown again. Needed on first write. */
  secretValue: secretValue.optional(),
  secretKind: z.enum(CREDENTIAL_KINDS).optional(),
});

/**
 * The caller's own personal connectors (used only in their DMs). Every role
 * has these, and only its own: the member comes from the token, never from the
 * path, and the secret name is derived from the member, never given. This is
 * the only way a personal secret is written. Websites are checked before the
 * secret is sealed: a connector may not unlock a non-public address.
 */
export function connectorRoutes(deps: ServerDeps) {
  async function view(c: Connection) {
    const meta = await (await deps.sealer()).metadata(c.secret);
    return {
      name: c.name,
      allowedWebsites: c.allowedWebsites,
      inject: c.inject,
      ...(c.narrow ? { narrow: c.narrow } : {}),
      secret: meta ? { kind: meta.kind, version: meta.version, createdAt: meta.createdAt, updatedAt: meta.updatedAt, lastUsedAt: meta.lastUsedAt } : null,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
    };
  }
  async function mine(principal: Principal, name: string) {
    const found = (await deps.access.listPersonalConnectors(principal.memberId)).find((c) => c.name === name);
    if (!found) throw notFound(`connector "${name}" not found`);
    return found;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/me/connectors',
      tag: 'connectors',
      summary: 'My personal connectors (secret metadata only)',
      role: 'member',
      handler: async ({ principal }) => Promise.all((await deps.access.listPersonalConnectors(principal.memberId)).map(view)),
    });
    route(app, {
      method: 'GET',
      url: '/me/connectors/:name',
      tag: 'connectors',
      summary: 'One of my personal connectors',
      role: 'member',
      params: nameParams,
      handler: async ({ params, principal }) => view(await mine(principal, params.name)),
    });
    route(app, {
      method: 'PUT',
      url: '/me/connectors/:name',
      tag: 'connectors',
      summary: 'Create or replace one of my personal connectors (host names and public IPs only); secretValue is sealed and never shown again',
      role: 'member',
      params: newNameParams,
      body: connectorBody,
      handler: async ({ params, body, principal }) => {
        const secret = personalSecretName(principal.memberId, params.name);
        const checked = personalConnectionSchema.safeParse({
          name: params.name,
          secret,
          allowedWebsites: body.allowedWebsites,
          inject: body.inject,
          ...(body.narrow !== undefined ? { narrow: body.narrow } : {}),
        });
        if (!checked.success) throw badRequest(describeZodError(checked.error, 'body'));
        const sealer = await deps.sealer();
        if (body.secretValue === undefined && !(await sealer.metadata(secret))) throw badRequest('body.secretValue: expected the credential (this connector has none yet)');
        // The connector first (validated, vetted, committed), then its value: a
        // refused connector never leaves a secret behind or rotates one.
        const website = (e: { host: string; ports?: number[] }) => (e.ports ? e : e.host);
        const spec = { ...checked.data, allowedWebsites: checked.data.allowedWebsites.map(website) };
        const connector = await deps.access.putPersonalConnector(actorOf(principal), principal.orgId, principal.memberId, spec);
        if (body.secretValue !== undefined) {
          const result = await sealer.put(secret, Buffer.from(body.secretValue, 'utf8'), body.secretKind ?? 'static');
          await deps.audit.append({
            type: 'admin-change',
            ...auditActor(principal),
            outcome: 'ok',
            action: result.created ? 'secret.create' : 'secret.rotate',
            target: `secret:${secret}`,
            fields: ['value'],
            version: result.version,
          });
        }
        return view(connector);
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/me/connectors/:name',
      tag: 'connectors',
      summary: 'Remove one of my personal connectors and its secret',
      role: 'member',
      status: 204,
      params: nameParams,
      handler: async ({ params, principal }) => {
        const connector = await mine(principal, params.name);
        await deps.access.deletePersonalConnector(actorOf(principal), principal.memberId, params.name);
        if (await (await deps.sealer()).delete(connector.secret)) {
          await deps.audit.append({ type: 'admin-change', ...auditActor(principal), outcome: 'ok', action: 'secret.remove', target: `secret:${connector.secret}` });
        }
      },
    });
  };
}
