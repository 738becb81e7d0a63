import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { Decision } from '../policy/decide.js';
import { decide } from '../policy/decide.js';
import { normaliseHost } from '../policy/hosts.js';
import type { Inject } from '../policy/bundle-schema.js';
import { renderInjection } from '../policy/inject.js';
import { describeError, failure, isTagboxError } from '../errors.js';
import type { CredentialResolver, ResolvedCredential } from '../vault/credentials.js';
import { countRawHeader, defaultPort, forwardableRequestHeaders, parseAuthority, type OutgoingHeaders } from './headers.js';
import type { ListenerState, TunnelInfo } from './listener-state.js';
import type { Gate, ModelMeter, UsageContext } from './model-meter.js';
import { githubTrafficOf, inspectPush, pullRequestOf, pushOutcome, Tap, type GithubFacts, type GithubTraffic, type PushInspection } from './github-traffic.js';
import { forward } from './forward.js';
import type { EgressRecorder } from './record.js';
import { RECEIVE_PACK_RESULT_TYPE } from './receive-pack-report.js';
import { shownTarget } from './redact.js';
import { describeUpstreamError, hostForUrl, poolOwner, type Upstreams, type UpstreamTarget } from './upstream.js';

/**
 * One HTTP request through the proxy, in the order the design reads:
 * authority checks -> decide(policy, request) -> the model budgets (a model
 * request of a metered listener) -> SSRF guard -> credential (resolved from
 * the vault now) -> a GitHub push's ref updates judged -> forward (a model
 * response tapped for its usage, a push's report or a pull request read, as
 * it passes) -> one audit record.
 */
/** Headers some frameworks read as the real method; never sent along with a credential. */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];

export interface ExchangeDeps {
  upstreams: Upstreams;
  resolver: CredentialResolver | undefined;
  record: EgressRecorder;
  /** Bodies buffered for request signing (SigV4) are capped, each... */
  maxSignedBodyBytes?: number;
  /** ...and together: one session's concurrent uploads must not fill the proxy's memory. */
  signingBuffers?: { held: number; max: number };
  /** Model requests of listeners with a usage context: budgets before, usage after (model-meter.ts). */
  meter?: ModelMeter;
}

export interface RequestTarget {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  /** The request-target path with its query, as sent. */
  pathAndQuery: string;
}

export type Recording = ReturnType<EgressRecorder['begin']>;

/** The answer to "may this request go out, and exactly how?" — refusals are already recorded. */
export type Admission =
  | { ok: false; malformed: boolean; status: number; reason: string; refusal?: Extract<Gate, { ok: false }> }
  | {
      ok: true;
      target: RequestTarget;
      decision: Decision;
      upstream: UpstreamTarget;
      headers: OutgoingHeaders;
      body?: Buffer;
      record: Recording;
      /** A model request of a metered listener: whose usage its answer is (decided once, with the budgets). */
      metered?: UsageContext;
    };

/**
 * Authority checks -> decide(policy, request) -> SSRF guard -> credential from
 * the vault, for plain requests and upgrades alike. The policy is read once.
 */
export async function admit(deps: ExchangeDeps, state: ListenerState, req: IncomingMessage, tunnel?: TunnelInfo, options: { bodyless?: boolean } = {}): Promise<Admission> {
  const started = process.hrtime.bigint();
  const target = requestTarget(req, tunnel);
  if (!target.ok) {
    deps.record.rejected(state, req, target.status, target.reason, tunnel);
    return { ok: false, malformed: true, status: target.status, reason: target.reason };
  }
  const { scheme, host, port, pathAndQuery } = target.value;
  const policy = state.policy;
  const decision = decide(policy, { method: req.method ?? 'GET', scheme, host, port, path: pathAndQuery });
  const record = deps.record.begin(state, { method: req.method ?? '', scheme, host: decision.host, port, path: pathAndQuery }, decision, started);
  if (decision.outcome === 'blocked') {
    record.finish({ status: 403 });
    return { ok: false, malformed: false, status: 403, reason: decision.reason };
  }
  // Invariant 12: a model request over budget is not sent (nor is its credential fetched).
  const metered = deps.meter?.meters(state.usage, decision.host) ? state.usage : undefined;
  if (metered) {
    const answer = deps.meter!.gate(metered);
    // Usually answered at once, from what the meter has cached: no promise to wait on.
    const gate = answer instanceof Promise ? await answer : answer;
    if (!gate.ok) {
      record.finish({ status: gate.status, outcome: 'blocked', reason: gate.reason, ...(gate.budget ? { budget: gate.budget } : {}) });
      return { ok: false, malformed: false, status: gate.status, reason: gate.reason, refusal: gate };
    }
  }
  const resolved = await deps.upstreams.resolve(scheme, decision.host, port, policy.addresses);
  if (!resolved.ok) {
    record.finish({ status: resolved.status, outcome: 'blocked', reason: resolved.reason });
    return { ok: false, malformed: false, status: resolved.status, reason: resolved.reason };
  }
  try {
    const prepared = await prepareHeaders(deps, state, req, decision, target.value, options.bodyless === true);
    return { ok: true, target: target.value, decision, upstream: resolved.target, ...prepared, record, ...(metered ? { metered } : {}) };
  } catch (error) {
    // Fail closed: a credential that cannot be had means the request is not sent at all.
    // A token endpoint's failure is told to the caller in general terms only (its
    // detail would turn the token fetch into a port scanner); the audit keeps it.
    const what = `credential for ${decision.bundle}/${decision.connection} unavailable`;
    const detail = describeError(error);
    const shown = isTagboxError(error) && error.code === 'token_fetch_failed' ? 'the token endpoint could not be used' : detail;
    const status = isTagboxError(error) && error.code === 'signing_buffers_full' ? 503 : 403;
    record.finish({ status, outcome: 'blocked', reason: `${what}: ${detail}` });
    return { ok: false, malformed: false, status, reason: `${what}: ${shown}` };
  }
}

export async function handleExchange(deps: ExchangeDeps, state: ListenerState, req: IncomingMessage, res: ServerResponse, tunnel?: TunnelInfo): Promise<void> {
  const admission = await admit(deps, state, req, tunnel);
  if (!admission.ok) {
    if (admission.refusal) return modelRefusal(res, admission.refusal);
    return admission.malformed ? reject(res, admission.status, admission.reason) : blocked(res, admission.reason, admission.status);
  }
  const { target, decision, headers, record, metered } = admission;
  const { port, pathAndQuery, scheme } = target;
  // A push on a GitHub App connection: its ref updates are judged before a byte goes upstream.
  const github = githubTrafficOf(decision, req.method ?? 'GET', pathAndQuery);
  const push = github?.kind === 'push' ? await inspectPush(req, github.pushBranches, state.session) : undefined;
  if (github?.kind === 'push' && push && !push.ok) {
    refusedPush(res, push.answer);
    record.finish({ status: 403, outcome: 'blocked', reason: `push refused: ${push.reason}`, github: { kind: 'push', repository: github.repository, refs: push.refs, refusedBy: 'tagbox' } });
    return;
  }
  const body = push?.ok ? push.body : (admission.body ?? req);
  // The meter reads what passes: ask for it unencoded (it can decode gzip, deflate and br, but need not).
  // (A signed request keeps its headers as signed.) So is a pull request's answer read, for its link.
  if ((metered && !admission.body) || github?.kind === 'pull-request') headers['accept-encoding'] = 'identity';

  try {
    let metering: ReturnType<ModelMeter['open']>;
    const tap = github ? new Tap() : undefined;
    let answered: Record<string, string | string[] | undefined> = {};
    const forwarded = await forward(
      deps.upstreams.pool(admission.upstream, poolOwner(state.id, decision)),
      {
        method: req.method ?? 'GET',
        path: pathAndQuery,
        headers: { ...headers, host: authorityHeader(decision.host, port, scheme) },
        body: push?.ok || hasBody(req) || Buffer.isBuffer(body) ? body : null,
      },
      res,
      metered || tap
        ? {
            onResponse: (_status, upstreamHeaders) => {
              answered = upstreamHeaders;
              if (metered) metering = deps.meter!.open(metered, state.session, upstreamHeaders);
            },
            onData: (chunk) => (metering ? metering.write(chunk) : tap?.push(chunk)),
            onEnd: () => void metering?.end(),
          }
        : undefined,
    );
    // Also when the client went away mid-answer: what was seen is recorded.
    const usage = metering ? await metering.end() : undefined;
    const facts = github && tap ? githubOutcome(github, push?.ok ? push : undefined, forwarded.status, answered, tap.bytes) : undefined;
    record.finish({ status: forwarded.status, bytesOut: forwarded.bytes, ...(usage ? { usage } : {}), ...(facts ? { github: facts } : {}) });
  } catch (error) {
    const { status, reason } = describeUpstreamError(error, decision.host);
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-tagbox-decision': decision.outcome, connection: 'close' });
      res.end(`${reason}\n`);
    } else res.destroy();
    record.finish({ status, reason: `${decision.reason}; ${reason}` });
  } finally {
    if (admission.body && deps.signingBuffers) deps.signingBuffers.held -= admission.body.length;
  }
}

/** Builds the upstream headers, injecting the credential when the decision says so. */
export async function prepareHeaders(
  deps: ExchangeDeps,
  state: ListenerState,
  req: IncomingMessage,
  decision: Decision,
  target: RequestTarget,
  bodyless = false,
): Promise<{ headers: OutgoingHeaders; body?: Buffer }> {
  if (decision.outcome !== 'credential' || !decision.inject) return { headers: forwardableRequestHeaders(req.headers) };
  if (!deps.resolver) throw new Error('no vault is configured for this proxy');
  const credential = await deps.resolver.resolve(decision.inject.secret, {
    connection: decision.connection!,
    ...(decision.bundle ? { bundle: decision.bundle } : {}),
    ...(state.session ? { session: state.session } : {}),
  }, decision.inject.mint);
  if (credential.kind === 'value') {
    const { name, value, drop } = renderedHeader(decision.inject, credential.value);
    // The client's own value of the injected header never reaches the upstream,
    // nor does a method override that could turn a read-only request into a write.
    const headers = forwardableRequestHeaders(req.headers, drop);
    headers[name] = value;
    return { headers };
  }
  // Request signing needs the whole body to hash it (an upgrade handshake has none).
  const body = bodyless ? Buffer.alloc(0) : await readBody(req, deps.maxSignedBodyBytes ?? 10 * 1024 * 1024, deps.signingBuffers);
  try {
    return signed(req, decision, target, credential, body);
  } catch (error) {
    if (deps.signingBuffers) deps.signingBuffers.held -= body.length;
    throw error;
  }
}

/**
 * The rendered header of an injection for the value the vault gave: kept until
 * the value changes (a rotation, a new token), so a repeat request only compares
 * the value the vault opened it with. The policy's inject objects are the keys.
 */
const rendered = new WeakMap<Inject, { secret: string; name: string; value: string; drop: ReadonlySet<string> }>();

function renderedHeader(inject: Inject, secret: string) {
  const hit = rendered.get(inject);
  if (hit && hit.secret === secret) return hit;
  const { name, value } = renderInjection(inject, secret);
  const lower = name.toLowerCase();
  const entry = { secret, name: lower, value, drop: new Set([lower, ...METHOD_OVERRIDES]) };
  rendered.set(inject, entry);
  return entry;
}

function signed(req: IncomingMessage, decision: Decision, target: RequestTarget, credential: Extract<ResolvedCredential, { kind: 'sign' }>, body: Buffer): { headers: OutgoingHeaders; body: Buffer } {
  const base = forwardableRequestHeaders(req.headers, new Set(['authorization', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token', ...METHOD_OVERRIDES]));
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) flat[k] = Array.isArray(v) ? v.join(', ') : v;
  flat.host = authorityHeader(target.host, target.port, target.scheme);
  const url = new URL(`${target.scheme}://${hostForUrl(decision.host)}:${target.port}${target.pathAndQuery}`);
  const signature = credential.sign({ method: req.method ?? 'GET', url, headers: flat, body });
  const headers: OutgoingHeaders = { ...base, 'content-length': String(body.length) };
  for (const [k, v] of Object.entries(signature)) headers[k.toLowerCase()] = v;
  delete headers.host;
  return { headers, body };
}

/** A refused push answers as git's receive-pack would, so that git prints each ref's reason. */
function refusedPush(res: ServerResponse, answer: Buffer): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(200, { 'content-type': RECEIVE_PACK_RESULT_TYPE, 'content-length': answer.length, 'cache-control': 'no-cache', 'x-tagbox-decision': 'blocked' });
  res.end(answer);
}

/** What a forwarded push landed, or the pull request a 201 created (undefined: nothing to tell). */
function githubOutcome(
  github: GithubTraffic,
  push: Extract<PushInspection, { ok: true }> | undefined,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  answer: Buffer,
): GithubFacts | undefined {
  if (github.kind === 'push') {
    if (!push || push.commands.length === 0) return undefined;
    return { kind: 'push', repository: github.repository, refs: pushOutcome(push.commands, push.verdict, push.capabilities, status, answer) };
  }
  if (status !== 201) return undefined;
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
  let json = answer;
  try {
    if (encoding === 'gzip') json = gunzipSync(answer);
    else if (encoding !== 'identity') return undefined;
  } catch {
    return undefined;
  }
  return pullRequestOf(github.repository, json);
}

type TargetResult = { ok: true; value: RequestTarget } | { ok: false; status: number; reason: string };

/**
 * Works out where a request is going and refuses the shapes that could make
 * the proxy and the upstream disagree about it: more than one Host, a Host
 * that differs from the absolute URI or from the tunnel, an SNI that differs
 * from the tunnel.
 */
export function requestTarget(req: IncomingMessage, tunnel?: TunnelInfo): TargetResult {
  if (countRawHeader(req.rawHeaders, 'host') > 1) return { ok: false, status: 400, reason: 'more than one Host header' };
  const url = req.url ?? '';
  const hostHeader = req.headers.host;
  const hostAuthority = hostHeader === undefined ? undefined : parseAuthority(hostHeader);
  if (hostHeader !== undefined && !hostAuthority) return { ok: false, status: 400, reason: `Host header "${shownTarget(hostHeader)}" is not a valid authority` };

  if (tunnel) {
    const scheme = tunnel.tls ? 'https' : 'http';
    if (tunnel.sni !== undefined && tunnel.sni !== tunnel.host) {
      return { ok: false, status: 421, reason: `TLS server name ${tunnel.sni} does not match the CONNECT target ${tunnel.host}` };
    }
    let pathAndQuery = url;
    if (!url.startsWith('/')) {
      const absolute = parseAbsolute(url);
      if (!absolute || !sameAuthority(absolute, tunnel)) {
        return { ok: false, status: 421, reason: `request names ${shownTarget(url)} inside a tunnel to ${tunnel.host}:${tunnel.port}` };
      }
      pathAndQuery = absolute.pathAndQuery;
    }
    if (!hostAuthority) return { ok: false, status: 400, reason: 'missing Host header' };
    if (!sameAuthority({ host: hostAuthority.host, port: hostAuthority.port ?? tunnel.port }, tunnel)) {
      return { ok: false, status: 421, reason: `Host ${shownTarget(hostHeader!)} does not match the CONNECT target ${tunnel.host}:${tunnel.port}` };
    }
    return { ok: true, value: { scheme, host: tunnel.host, port: tunnel.port, pathAndQuery } };
  }

  const absolute = parseAbsolute(url);
  if (!absolute) return { ok: false, status: 400, reason: 'a proxy request needs an absolute URI (http://host/path) or CONNECT' };
  const uriHost = normaliseHost(absolute.host);
  if (hostAuthority && (!uriHost.ok || !sameAuthority({ host: hostAuthority.host, port: hostAuthority.port ?? absolute.port }, { host: uriHost.value.host, port: absolute.port }))) {
    return { ok: false, status: 421, reason: `Host ${shownTarget(hostHeader!)} does not match the request URI's host ${shownTarget(absolute.host)}` };
  }
  return { ok: true, value: { scheme: absolute.scheme, host: absolute.host, port: absolute.port, pathAndQuery: absolute.pathAndQuery } };
}

function parseAbsolute(url: string): (RequestTarget & { port: number }) | undefined {
  const m = /^(https?):\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase() as 'http' | 'https';
  // User-info in a proxy URI is a classic confusion trick; refuse it.
  if (m[2]!.includes('@')) return undefined;
  const authority = parseAuthority(m[2]!);
  if (!authority) return undefined;
  let pathAndQuery = m[3] || '/';
  if (pathAndQuery.startsWith('?')) pathAndQuery = `/${pathAndQuery}`;
  return { scheme, host: authority.host, port: authority.port ?? defaultPort(scheme), pathAndQuery };
}

/** Whether `a` names the same host and port as `b`, whose host is already normalised (a tunnel's, or a URI's). */
function sameAuthority(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  if (a.port !== b.port) return false;
  const x = normaliseHost(a.host);
  return x.ok && x.value.host === b.host;
}

function authorityHeader(host: string, port: number, scheme: 'http' | 'https'): string {
  return port === defaultPort(scheme) ? hostForUrl(host) : `${hostForUrl(host)}:${port}`;
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

/** Reads a body to sign, counting it against the shared budget (the caller gives it back). */
async function readBody(req: IncomingMessage, max: number, budget?: { held: number; max: number }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (budget) budget.held += chunk.length;
      if (size > max) throw new Error(`request body over ${max} bytes cannot be signed`);
      if (budget && budget.held > budget.max) throw failure(`the proxy holds too many request bodies for signing (${budget.max} bytes); try again later`, 'signing_buffers_full');
      chunks.push(chunk);
    }
  } catch (error) {
    if (budget) budget.held -= size;
    throw error;
  }
  return Buffer.concat(chunks);
}

/** The blocked answer of CONTRACT.md: 403, X-Tagbox-Decision: blocked, a one-line reason naming the host. */
export function blocked(res: ServerResponse, reason: string, status = 403): void {
  if (res.headersSent) return void res.destroy();
  const body = `blocked by Tagbox: ${reason}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-tagbox-decision': 'blocked' });
  res.end(body);
}

/**
 * A model request refused at the proxy (a spent budget): answered as the
 * Messages API answers a refusal, so that the engine shows its message, with
 * the blocked decision header of every refusal.
 */
function modelRefusal(res: ServerResponse, refusal: Extract<Gate, { ok: false }>): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ type: 'error', error: { type: refusal.errorType, message: refusal.message } });
  res.writeHead(refusal.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-tagbox-decision': 'blocked' });
  res.end(body);
}

function reject(res: ServerResponse, status: number, reason: string): void {
  const body = `${reason}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-tagbox-decision': 'blocked', connection: 'close' });
  res.end(body);
}
