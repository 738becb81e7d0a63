import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getMember } from '../../access/members-repo.js';
import { getWorkspace } from '../../access/workspaces-repo.js';
import type { ServerDeps } from '../deps.js';
import { forbidden, HttpError, notFound, unavailable } from '../http-errors.js';
import { actorOf } from '../principal.js';
import { route } from '../route.js';
import { apiRoleOf, roleAtLeast } from '../roles.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import { newId } from '../../util/ids.js';
import { clearSessionCookie, setSessionCookie } from './cookies.js';
import { csrfTokenFor } from './csrf.js';
import { mintLink, mintLinkIn, signInWithLink, signOut } from './link-service.js';
import { ownOrigin, signInUrl, type WebConfig } from './web-config.js';
import { webWorkspaceId } from './web-workspace.js';

export const LINK_INVALID_MESSAGE = 'this sign-in link is not valid: it was used, it expired, or it was never issued; ask an admin for a new one';

export interface WebAuthRouteOptions {
  web: () => WebConfig;
  /** The sign-in page's OIDC button, when OIDC is configured. */
  oidc: () => { name: string; start: string } | null;
}

/**
 * Web sign-in under /api/v1 (docs/WEB.md "Signing in"): links traded for a
 * cookie session, /me, sign-out, and the admin side (invitations, links for
 * existing members). A link is the power to be that member, so nobody mints
 * one for a member who outranks them or who is in another org.
 */
export function webAuthRoutes(deps: ServerDeps, options: WebAuthRouteOptions) {
  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/auth/options',
      tag: 'auth',
      summary: 'How one may sign in to the web app (sign-in links; OIDC when configured)',
      role: 'public',
      handler: async () => ({ link: true, oidc: options.oidc() }),
    });
    route(app, {
      method: 'POST',
      url: '/auth/link',
      tag: 'auth',
      summary: 'Trade a one-time sign-in link token for a cookie session (sets the tagbox_session cookie)',
      role: 'public',
      body: z.strictObject({ token: z.string().min(1).max(200) }),
      handler: async ({ body, request, reply }) => {
        const web = options.web();
        const signedIn = await signInWithLink(deps.store, deps.audit, body.token, web.sessionHours);
        if (!signedIn) throw new HttpError(401, 'link_invalid', LINK_INVALID_MESSAGE);
        const member = await getMember(deps.store.db, signedIn.session.memberId);
        setSessionCookie(reply, request, web, signedIn.cookie, signedIn.session.expiresAt);
        return {
          member: { id: signedIn.session.memberId, name: member?.displayName ?? '' },
          role: apiRoleOf(member?.roles ?? []),
          csrfToken: csrfTokenFor(signedIn.cookie),
          expiresAt: signedIn.session.expiresAt,
        };
      },
    });
    route(app, {
      method: 'POST',
      url: '/auth/signout',
      tag: 'auth',
      summary: 'End this cookie session (revoked at once) and clear the cookie',
      role: 'member',
      status: 204,
      handler: async ({ request, reply }) => {
        if (request.webSession) await signOut(deps.store, deps.audit, request.webSession);
        clearSessionCookie(reply, request, options.web());
      },
    });
    route(app, {
      method: 'GET',
      url: '/me',
      tag: 'auth',
      summary: 'Who you are: member, org, role, and how you signed in (with the CSRF token of a cookie session)',
      role: 'member',
      handler: async ({ principal, request }) => {
        const member = await getMember(deps.store.db, principal.memberId);
        const org = await deps.access.getOrg(principal.orgId);
        return {
          member: { id: principal.memberId, name: member?.displayName ?? '', workspaceId: member?.workspaceId ?? '' },
          org: { id: org.id, name: org.name },
          role: principal.role,
          via: principal.via,
          ...(request.webSession ? { csrfToken: request.webSession.csrfToken, expiresAt: request.webSession.expiresAt } : {}),
        };
      },
    });
    route(app, {
      method: 'POST',
      url: '/invitations',
      tag: 'auth',
      summary: 'Invite a person: a new member of the web workspace with that role, and a one-time sign-in link for them',
      role: 'admin',
      status: 201,
      body: z.strictObject({
        name: z.string().trim().min(1).max(200),
        email: z.email({ error: 'expected an email address' }).max(320).optional(),
        role: z.enum(['member', 'admin']).optional(),
      }),
      handler: async ({ body, principal, request }) => {
        const web = options.web();
        const role = body.role ?? 'member';
        if (!roleAtLeast(principal.role, role)) throw forbidden(`role: you cannot grant ${role}, which is above your own role (${principal.role})`);
        const workspaceId = await webWorkspaceId(deps.store.db, principal.orgId);
        if (!workspaceId) throw unavailable('this org has no web workspace yet (it is made at the first `tagbox up`)');
        const email = body.email?.toLowerCase();
        // The external id keeps one member per invited email (a second invitation is a 409).
        const member = await deps.access.createMember(actorOf(principal), {
          workspaceId,
          externalId: email ? `email:${email}` : `invite:${newId()}`,
          displayName: body.name,
          hasAccount: true,
          roles: role === 'member' ? [] : [role],
        });
        const link = await withWriteTransaction(deps.store, undefined, async (db) => {
          if (email) await db.insertInto('member_emails').values({ member_id: member.id, email, created_at: new Date().toISOString() }).execute();
          return mintLinkIn(db, deps.audit, { orgId: principal.orgId, memberId: member.id, actor: actorOf(principal), hours: web.signInLinkHours });
        });
        return { member, link: { url: signInUrl(ownOrigin(web, request), link.token), expiresAt: link.expiresAt } };
      },
    });
    route(app, {
      method: 'POST',
      url: '/members/:id/login-links',
      tag: 'auth',
      summary: 'A one-time sign-in link for an existing member (never for one who outranks you)',
      role: 'admin',
      status: 201,
      params: z.strictObject({ id: z.string().min(1).max(100) }),
      handler: async ({ params, principal, request }) => {
        const web = options.web();
        const member = await getMember(deps.store.db, params.id);
        const workspace = member && (await getWorkspace(deps.store.db, member.workspaceId));
        // Another org's member is "not found": no probing for ids.
        if (!member || workspace?.orgId !== principal.orgId) throw notFound(`member "${params.id}" not found`);
        const theirs = apiRoleOf(member.roles);
        if (!roleAtLeast(principal.role, theirs)) throw forbidden(`only an ${theirs} can make a sign-in link for an ${theirs}`);
        if (!member.hasAccount) throw new HttpError(400, 'invalid_input', `params.id: member "${params.id}" has no Tagbox account (a chat user only); invite them instead`);
        const link = await mintLink(deps.store, deps.audit, { orgId: principal.orgId, memberId: member.id, actor: actorOf(principal), hours: web.signInLinkHours });
        return { url: signInUrl(ownOrigin(web, request), link.token), expiresAt: link.expiresAt };
      },
    });
  };
}
