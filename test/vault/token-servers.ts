import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestCa } from '../fixtures/ca.js';

/**
 * Local HTTPS servers that speak the wire format of GitHub's installation
 * token endpoint and of an OAuth 2.0 token endpoint (client credentials).
 */
export interface FakeTokenServer {
  port: number;
  calls: number;
  /** What the next answers look like; tests change it. */
  respond: { status: number; body: string; delayMs?: number };
  lastRequest?: { path: string; headers: Record<string, string | string[] | undefined>; body: string };
  close(): Promise<void>;
}

async function start(ca: TestCa, host: string, handle: (path: string, headers: Record<string, string | string[] | undefined>, body: string) => { status: number; body: string } | undefined): Promise<FakeTokenServer> {
  const cert = await ca.issue([host]);
  const state: FakeTokenServer = { port: 0, calls: 0, respond: { status: 200, body: '{}' }, close: async () => undefined };
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.calls += 1;
      const body = Buffer.concat(chunks).toString();
      state.lastRequest = { path: req.url ?? '', headers: req.headers, body };
      const reply = handle(req.url ?? '', req.headers, body) ?? state.respond;
      setTimeout(() => {
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(reply.body);
      }, state.respond.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

/** POST /app/installations/{id}/access_tokens, with the app JWT checked (RS256, iss, exp). */
export async function startFakeGithub(ca: TestCa, appPublicKey: KeyObject | string, appId: string): Promise<FakeTokenServer> {
  const key = typeof appPublicKey === 'string' ? createPublicKey(appPublicKey) : appPublicKey;
  return start(ca, 'api.github.test', (path, headers) => {
    if (!/^\/app\/installations\/\d+\/access_tokens$/.test(path)) return { status: 404, body: '{"message":"Not Found"}' };
    const auth = String(headers.authorization ?? '');
    const [h, p, s] = auth.replace(/^Bearer /, '').split('.');
    const good = h && p && s && verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
    const claims = good ? (JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss: string; exp: number; iat: number }) : undefined;
    if (!claims || claims.iss !== appId || claims.exp - claims.iat > 600) return { status: 401, body: '{"message":"A JSON web token could not be decoded"}' };
    if (headers.accept !== 'application/vnd.github+json') return { status: 415, body: '{}' };
    return undefined;
  });
}

/** An OAuth 2.0 token endpoint: client_credentials grant with client_secret_basic or _post. */
export async function startFakeOAuth(ca: TestCa, clientId: string, clientSecret: string): Promise<FakeTokenServer> {
  return start(ca, 'auth.example.test', (path, headers, body) => {
    if (path !== '/oauth/token') return { status: 404, body: '{"error":"not_found"}' };
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: '{"error":"unsupported_grant_type"}' };
    const basic = String(headers.authorization ?? '').replace(/^Basic /, '');
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString().split(':').map(decodeURIComponent) : [form.get('client_id'), form.get('client_secret')];
    if (id !== clientId || secret !== clientSecret) return { status: 401, body: '{"error":"invalid_client"}' };
    return undefined;
  });
}
