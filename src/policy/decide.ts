/**
 * decide(): one egress request -> one Decision, computed in one place, with a
 * one-line reason. The rules are CONTRACT.md's, in order:
 *   1. credential — on a connection's allowed websites and inside its narrowing
 *      (most specific wins: exact host over wildcard, then longer path prefix);
 *   2. allowlist — the host (and port) is in any bundle's domains or any
 *      connection's allowedWebsites: forwarded without a credential;
 *   3. blocked — everything else, including anything that does not normalise.
 * A credential goes out over TLS only: a plain-http request that would get one
 * is blocked, unless its connection says `plainHttp: true`.
 */
import type { AllowRule, CredentialRule, EgressPolicy, Injection } from './compile.js';
import { apiRefusal, githubOutside } from './github-paths.js';
import { normaliseHost, type NormalisedHost } from './hosts.js';
import { isReadOnlyMethod } from './methods.js';
import { matchesPathPrefix, normalisePath, type NormalisedPath } from './paths.js';

export interface EgressRequest {
  /** As sent: methods are case-sensitive. */
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /** Host without port; IPv6 with or without brackets; any case, IDN or IP encoding. */
  readonly host: string;
  readonly port: number;
  /** The request-target path, query included or not (it is ignored for matching). */
  readonly path: string;
}

export type Outcome = 'credential' | 'allowlist' | 'blocked';

export type { Injection };

export interface Decision {
  readonly outcome: Outcome;
  /** One line, naming the host. */
  readonly reason: string;
  /** The host pattern that matched. */
  readonly rule?: string;
  readonly bundle?: string;
  readonly connection?: string;
  readonly inject?: Injection;
  /** The normalised host (canonical IP text for literals; IPv6 without brackets), or the raw host when invalid. */
  readonly host: string;
}

export interface NormalisedRequest {
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly host: NormalisedHost;
  readonly port: number;
  readonly path: NormalisedPath;
}

/** Normalises a request's host and path, or says why it cannot be (then it is blocked). */
export function normaliseRequest(request: EgressRequest): { ok: true; request: NormalisedRequest } | { ok: false; reason: string } {
  const host = normaliseHost(request.host);
  if (!host.ok) return { ok: false, reason: `host ${JSON.stringify(request.host)} is invalid: ${host.error}` };
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) {
    return { ok: false, reason: `host ${host.value.host}: port ${String(request.port)} is not a valid port` };
  }
  return {
    ok: true,
    request: { method: request.method, scheme: request.scheme, host: host.value, port: request.port, path: normalisePath(request.path) },
  };
}

export function decide(policy: EgressPolicy, request: EgressRequest): Decision {
  const n = normaliseRequest(request);
  if (!n.ok) return { outcome: 'blocked', reason: n.reason, host: request.host };
  const req = n.request;
  const host = req.host.host;

  let missed: string | undefined; // why the nearest credential rule did not apply
  const chosen = policy.credentials.find(req.host, (group) => {
    let best: CredentialRule | undefined;
    for (const rule of group) {
      if (!rule.ports.has(req.port)) continue;
      const why = outsideNarrowing(rule, req);
      if (why) {
        missed ??= `outside the narrowing of ${rule.bundle}/${rule.connection} (${why})`;
        continue;
      }
      if (!best || prefixLength(rule) > prefixLength(best)) best = rule;
    }
    return best;
  });
  if (chosen) {
    // Invariant 7: a request that would carry the credential in clear is not
    // sent at all (never forwarded bare to a host that requires it).
    if (req.scheme !== 'https' && !chosen.plainHttp) return { outcome: 'blocked', reason: plainHttpReason(chosen, host), rule: chosen.pattern.text, bundle: chosen.bundle, connection: chosen.connection, host };
    // A GitHub App token on the REST API: a write that could move a branch around the push policy is refused.
    const refusal = chosen.github?.service === 'api' ? apiRefusal(req.method, req.path) : undefined;
    if (refusal) return { outcome: 'blocked', reason: `host ${host} matches connection ${chosen.label}, but ${refusal}`, rule: chosen.pattern.text, bundle: chosen.bundle, connection: chosen.connection, host };
    return credential(chosen, host);
  }

  const allowed = firstAllow(policy, req.host, req.port);
  if (allowed) {
    const by = allowed.connection === undefined ? `bundle ${allowed.bundle} (domains: ${allowed.pattern.text})` : `${allowed.bundle}/${allowed.connection} (allowedWebsites: ${allowed.pattern.text})`;
    const note = missed ? `; ${missed}, so no credential` : '';
    return { outcome: 'allowlist', reason: `host ${host} is allowed by ${by}${note}`, rule: allowed.pattern.text, bundle: allowed.bundle, ...(allowed.connection === undefined ? {} : { connection: allowed.connection }), host };
  }
  return { outcome: 'blocked', reason: blockedReason(policy, req.host, req.port), host };
}

/**
 * For a tunnel the proxy will not open (passthrough) or a CONNECT before
 * interception: only host-level rules apply, so the answer is allowlist or
 * blocked. A credential can never be injected into an unopened tunnel.
 */
export function decideTunnel(policy: EgressPolicy, target: { readonly host: string; readonly port: number }): Decision {
  const n = normaliseRequest({ method: 'CONNECT', scheme: 'https', host: target.host, port: target.port, path: '/' });
  if (!n.ok) return { outcome: 'blocked', reason: n.reason, host: target.host };
  const host = n.request.host;
  const allowed = firstAllow(policy, host, target.port);
  if (!allowed) return { outcome: 'blocked', reason: blockedReason(policy, host, target.port), host: host.host };
  return {
    outcome: 'allowlist',
    reason: `host ${host.host} is allowed by bundle ${allowed.bundle} (${allowed.pattern.text})`,
    rule: allowed.pattern.text,
    bundle: allowed.bundle,
    ...(allowed.connection === undefined ? {} : { connection: allowed.connection }),
    host: host.host,
  };
}

function credential(rule: CredentialRule, host: string): Decision {
  return {
    outcome: 'credential',
    reason: `host ${host} matches connection ${rule.label}`,
    rule: rule.pattern.text,
    bundle: rule.bundle,
    connection: rule.connection,
    inject: rule.injection,
    host,
  };
}

function plainHttpReason(rule: CredentialRule, host: string): string {
  return (
    `host ${host} matches connection ${rule.label}, whose credential is only sent over TLS: use https://${host}/ ` +
    '(plain http is blocked so the credential never travels in clear; plainHttp: true on the connection allows it, e.g. for a loopback service)'
  );
}

function outsideNarrowing(rule: CredentialRule, req: NormalisedRequest): string | undefined {
  if (rule.github) return githubOutside(rule.github, req.method, req.path);
  if (rule.readOnly && !isReadOnlyMethod(req.method)) return `method ${req.method} is not read-only`;
  if (rule.pathPrefix !== undefined && !matchesPathPrefix(req.path, rule.pathPrefix)) {
    return req.path.unsafe ? `the path has ${req.path.unsafe}` : `path ${req.path.path} is not under ${rule.pathPrefix}`;
  }
  return undefined;
}

function prefixLength(rule: CredentialRule): number {
  return rule.pathPrefix === undefined ? -1 : rule.pathPrefix.length;
}

function firstAllow(policy: EgressPolicy, host: NormalisedHost, port: number): AllowRule | undefined {
  return policy.allow.find(host, (group) => group.find((rule) => rule.ports.has(port)));
}

function blockedReason(policy: EgressPolicy, host: NormalisedHost, port: number): string {
  const rule = policy.allow.find(host, (group) => group[0]);
  if (!rule) return `host ${host.host} is not allowed by any bundle`;
  const ports = [...rule.ports].sort((a, b) => a - b).join(', ');
  return `host ${host.host} is allowed by bundle ${rule.bundle} (${rule.pattern.text}) on ports ${ports}, not on port ${port}`;
}
