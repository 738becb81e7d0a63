import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getMember } from '../../access/members-repo.js';
import { getWorkspace } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../deps.js';
import { badRequest, forbidden, notFound } from '../http-errors.js';
import { SECRET_NAME_PATTERN } from '../../policy/bundle-schema.js';
import { SLACK_MODES } from '../../surfaces/slack/model.js';
import type { SlackSettings } from '../../access/model.js';
import { listMembers } from '../../access/members-repo.js';
import { actorOf, type Principal } from '../principal.js';
import { route } from '../route.js';
import { apiRoleOf, roleAtLeast } from '../roles.js';

const text = (max: number) => z.string().min(1).max(max);
const idParams = z.strictObject({ id: text(100) });
const vaultName = z.string().regex(SECRET_NAME_PATTERN, 'expected a vault secret name: a-z 0-9 . _ -, at most 63 characters');
const slackSettings = z.strictObject({
  mode: z.enum(SLACK_MODES).default('socket'),
  botTokenSecret: vaultName,
  appTokenSecret: vaultName.optional(),
});
const newWorkspace = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('web'), externalId: text(200), name: text(200), slack: z.undefined().optional() }),
  // Without `slack`, a Slack team is recorded but not connected (its channels and members can be prepared).
  z.strictObject({ kind: z.literal('slack'), externalId: text(200), name: text(200), slack: slackSettings.optional() }),
]);
const roleName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected a role name: a-z 0-9 _ -, at most 32 characters');

/**
 * Workspaces, channels and members: admins. Nobody grants a role above their
 * own, nor changes the roles of someone who outranks them: admins manage
 * members and admins; granting, removing or changing an owner is an owner's.
 */
export function workspaceRoutes(deps: ServerDeps) {
  async function workspaceOf(principal: Principal, id: string) {
    const workspace = await getWorkspace(deps.store.db, id);
    if (!workspace || workspace.orgId !== principal.orgId) throw notFound(`workspace "${id}" not found`);
    return workspace;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/workspaces',
      tag: 'workspaces',
      summary: 'List workspaces',
      role: 'admin',
      handler: ({ principal }) => deps.access.listWorkspaces(principal.orgId),
    });
    route(app, {
      method: 'POST',
      url: '/workspaces',
      tag: 'workspaces',
      summary: 'Connect a workspace',
      role: 'admin',
      status: 201,
      body: newWorkspace,
      handler: async ({ body, principal }) => {
        if (body.kind === 'slack' && body.slack) await checkSlackSettings(deps, body.slack);
        else if (body.slack) throw badRequest('slack: only a workspace of kind "slack" takes Slack settings');
        return deps.access.createWorkspace(actorOf(principal), { orgId: principal.orgId, ...body });
      },
    });
    route(app, {
      method: 'GET',
      url: '/workspaces/:id/channels',
      tag: 'workspaces',
      summary: "List a workspace's channels",
      role: 'admin',
      params: idParams,
      handler: async ({ params, principal }) => deps.access.listChannels((await workspaceOf(principal, params.id)).id),
    });
    route(app, {
      method: 'POST',
      url: '/workspaces/:id/channels',
      tag: 'workspaces',
      summary: 'Add a channel to a workspace',
      role: 'admin',
      status: 201,
      params: idParams,
      body: z.strictObject({ externalId: text(200), name: text(200), isPrivate: z.boolean().optional() }),
      handler: async ({ params, body, principal }) =>
        deps.access.createChannel(actorOf(principal), { workspaceId: (await workspaceOf(principal, params.id)).id, ...body }),
    });
    route(app, {
      method: 'GET',
      url: '/workspaces/:id/members',
      tag: 'workspaces',
      summary: "List a workspace's members and their roles",
      role: 'admin',
      params: idParams,
      handler: async ({ params, principal }) => listMembers(deps.store.db, (await workspaceOf(principal, params.id)).id),
    });
    route(app, {
      method: 'POST',
      url: '/workspaces/:id/members',
      tag: 'workspaces',
      summary: 'Add a member to a workspace',
      role: 'admin',
      status: 201,
      params: idParams,
      body: z.strictObject({
        externalId: text(200),
        displayName: text(200),
        hasAccount: z.boolean().optional(),
        isGuest: z.boolean().optional(),
        roles: z.array(roleName).max(20).optional(),
      }),
      handler: async ({ params, body, principal }) => {
        const granted = apiRoleOf(body.roles ?? []);
        if (!roleAtLeast(principal.role, granted)) throw forbidden(`roles: you cannot grant ${granted}, which is above your own role (${principal.role})`);
        return deps.access.createMember(actorOf(principal), { workspaceId: (await workspaceOf(principal, params.id)).id, ...body });
      },
    });
    route(app, {
      method: 'PUT',
      url: '/members/:id/roles',
      tag: 'workspaces',
      summary: "Replace a member's roles",
      role: 'admin',
      params: idParams,
      body: z.strictObject({ roles: z.array(roleName).max(20) }),
      handler: async ({ params, body, principal }) => {
        const member = await getMember(deps.store.db, params.id);
        if (!member) throw notFound(`member "${params.id}" not found`);
        await workspaceOf(principal, member.workspaceId).catch(() => {
          throw notFound(`member "${params.id}" not found`);
        });
        const current = apiRoleOf(member.roles);
        const granted = apiRoleOf(body.roles);
        if (!roleAtLeast(principal.role, current)) throw forbidden(`roles: only an ${current} can change the roles of an ${current}`);
        if (!roleAtLeast(principal.role, granted)) throw forbidden(`roles: you cannot grant ${granted}, which is above your own role (${principal.role})`);
        return deps.access.setMemberRoles(actorOf(principal), member.id, body.roles);
      },
    });
  };
}

/**
 * What a Slack workspace needs before it can work: Socket Mode an app-level
 * token, the Events API the signing secret in the server's configuration,
 * and each named secret present in the vault (names only: values never pass here).
 */
async function checkSlackSettings(deps: ServerDeps, slack: SlackSettings): Promise<void> {
  if (slack.mode === 'socket' && !slack.appTokenSecret) throw badRequest('slack.appTokenSecret: Socket Mode needs the app-level token (xapp-…) in the vault, named here');
  if (slack.mode === 'events' && !deps.slackSigningSecret) {
    throw badRequest('slack.mode: the Events API needs slack.signingSecret in tagbox.yaml (or TAGBOX_SLACK_SIGNING_SECRET)');
  }
  const vault = await deps.sealer();
  for (const [field, name] of [['botTokenSecret', slack.botTokenSecret], ['appTokenSecret', slack.appTokenSecret]] as const) {
    if (name && !(await vault.metadata(name))) throw badRequest(`slack.${field}: no secret named "${name}" in the vault (tagbox secret set ${name})`);
  }
}
