import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INSTALL_DIR } from '../privsep/plan.js';

/** Where `npm run build` puts the web app (vite build of web/). */
export const WEB_ROOT = join(INSTALL_DIR, 'dist', 'web');

/** Paths the app answers itself (its router): each gets the same page. */
export const APP_PATHS = ['/', '/signin', '/chat', '/chat/*', '/admin', '/admin/*'];

/**
 * The page's Content-Security-Policy: scripts, styles and connections from
 * this origin only, no inline script, no framing. A message rendered in the
 * chat is text (web/src/text/rich-text.tsx); this is the second wall if that
 * ever failed.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Serves the built web app at /: hashed assets cached for good, the page
 * itself never cached (a new build is picked up on reload). When the app is
 * not built, / says how to build it rather than 404.
 */
export function webApp(root = WEB_ROOT) {
  return async (app: FastifyInstance) => {
    const indexFile = join(root, 'index.html');
    if (!existsSync(indexFile)) {
      for (const path of APP_PATHS) {
        app.get(path, { schema: { hide: true } }, async (_request, reply) =>
          pageHeaders(reply).status(503).type('text/plain; charset=utf-8').send('The web app is not built: run `npm run build` (or `npm run setup`) and restart Tagbox.\n'),
        );
      }
      return;
    }
    const index = readFileSync(indexFile);
    await app.register(fastifyStatic, {
      root: join(root, 'assets'),
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      // Vite names assets by content hash: a name never changes meaning.
      immutable: true,
      maxAge: '365d',
      setHeaders: (reply) => void reply.header('x-content-type-options', 'nosniff').header('cross-origin-resource-policy', 'same-origin'),
    });
    for (const path of APP_PATHS) {
      app.get(path, { schema: { hide: true } }, async (_request, reply) => pageHeaders(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(index));
    }
  };
}
