/**
 * Bundles -> EgressPolicy: the indexes decide() reads. Built once per policy
 * change; lookups cost O(labels of the host), whatever the number of rules.
 * Ambiguity (two connections that would match the same request with the same
 * specificity) is a load-time error, so decide() never has to break a tie.
 */
import { invalidInput } from '../errors.js';
import type { Bundle, HostEntry, Inject } from './bundle-schema.js';
import { compileCidrs, hostCidr, type Cidr, type CompiledCidrs } from './cidr.js';
import { HostIndex } from './host-index.js';
import { parseHostPattern, patternCovers, portsOf, portsOverlap, type HostPattern } from './hosts.js';
import { GITHUB_API_HOST, GITHUB_GIT_HOST, mintRepositories, type GithubSettings } from './github-settings.js';
import { type GithubRule } from './github-paths.js';
import { parsePathPrefix } from './paths.js';

/** One way a connection's credential can apply: a host pattern, its ports, the narrowing. */
export interface CredentialRule {
  readonly bundle: string;
  readonly connection: string;
  readonly secret: string;
  readonly inject: Inject;
  /** narrow.host when given, else the allowedWebsites entry. */
  readonly pattern: HostPattern;
  readonly ports: ReadonlySet<number>;
  readonly pathPrefix?: string;
  readonly readOnly: boolean;
  /** The connection opted into plain http (`plainHttp: true`); otherwise TLS only. */
  readonly plainHttp: boolean;
  /** A GitHub App connection's rule: git or the REST API, its repositories and push branches. */
  readonly github?: GithubRule;
  /** Precomputed for decide(): what to inject, and `bundle/connection (pattern, narrowing)`. */
  readonly injection: Injection;
  readonly label: string;
}

/** What the proxy must inject on a credential decision: the secret's vault name and how. */
export type Injection = Inject & {
  readonly secret: string;
  /** A GitHub App token is minted for these repositories (names) and permissions only. */
  readonly mint?: MintNarrowing;
  /** git (pushes are inspected against pushBranches) or the REST API (created pull requests are reported). */
  readonly github?: { readonly service: 'git' | 'api'; readonly pushBranches: string };
};

export interface MintNarrowing {
  readonly repositories?: readonly string[];
  readonly permissions?: Readonly<Record<string, string>>;
}

/** A host reachable without a credential: a `domains` entry or an allowed website. */
export interface AllowRule {
  readonly bundle: string;
  /** Set when the rule comes from a connection's allowedWebsites. */
  readonly connection?: string;
  readonly pattern: HostPattern;
  readonly ports: ReadonlySet<number>;
}

export interface EgressPolicy {
  /** Bundle names, in the order given. */
  readonly bundles: readonly string[];
  readonly credentials: HostIndex<CredentialRule>;
  readonly allow: HostIndex<AllowRule>;
  /** Every IP and CIDR entry: what the SSRF guard may dial despite its class. */
  readonly addresses: CompiledCidrs;
}

/**
 * Compiles bundles (validated by the bundle-file schema, or equivalent data
 * from the store). Throws an exit-2 TagboxError naming the bundle and
 * connection for a bad entry, a duplicate name, or an ambiguous pair.
 */
export function compilePolicy(bundles: readonly Bundle[]): EgressPolicy {
  const credentials = new HostIndex<CredentialRule>();
  const allow = new HostIndex<AllowRule>();
  const blocks: Cidr[] = [];
  const names = new Set<string>();
  // pattern + path prefix -> rules, to find equally specific connections.
  const bySpecificity = new Map<string, CredentialRule[]>();

  const addAllow = (rule: AllowRule) => {
    allow.add(rule.pattern, rule);
    if (rule.pattern.kind === 'ip') blocks.push(hostCidr(rule.pattern.ip));
    if (rule.pattern.kind === 'cidr') blocks.push(rule.pattern.cidr);
  };

  for (const bundle of bundles) {
    if (names.has(bundle.name)) throw invalidInput(`bundle "${bundle.name}" is defined twice`, 'invalid_bundles');
    names.add(bundle.name);
    bundle.domains.forEach((entry, i) => {
      const { pattern, ports } = entryOf(entry, `bundle "${bundle.name}": domains[${i}]`);
      addAllow({ bundle: bundle.name, pattern, ports });
    });

    const connectionNames = new Set<string>();
    for (const conn of bundle.connections) {
      const where = `bundle "${bundle.name}", connection "${conn.name}"`;
      if (connectionNames.has(conn.name)) throw invalidInput(`${where}: connection name is used twice in the bundle`, 'invalid_bundles');
      connectionNames.add(conn.name);

      const websites = conn.allowedWebsites.map((e, i) => entryOf(e, `${where}: allowedWebsites[${i}]`));
      for (const w of websites) addAllow({ bundle: bundle.name, connection: conn.name, pattern: w.pattern, ports: w.ports });

      let pathPrefix: string | undefined;
      if (conn.narrow?.pathPrefix !== undefined) {
        const p = parsePathPrefix(conn.narrow.pathPrefix);
        if (!p.ok) throw invalidInput(`${where}: narrow.pathPrefix: ${p.error}`, 'invalid_bundles');
        pathPrefix = p.value;
      }
      for (const [pattern, ports] of credentialPatterns(websites, conn.narrow?.host, where)) {
        const readOnly = conn.narrow?.readOnly === true;
        const narrowing = [pattern.text];
        if (pathPrefix !== undefined) narrowing.push(`path prefix ${pathPrefix}`);
        if (readOnly) narrowing.push('read-only');
        const plainHttp = conn.plainHttp === true;
        if (plainHttp) narrowing.push('plain http allowed');
        const github = conn.github ? githubRule(conn.github, pattern.text) : undefined;
        if (github) narrowing.push(github.rule.service === 'git' ? 'git' : 'REST API', ...(conn.github?.repositories ? [`repositories ${conn.github.repositories.join(', ')}`] : []));
        const inject = github?.inject ?? conn.inject;
        const rule: CredentialRule = {
          bundle: bundle.name,
          connection: conn.name,
          secret: conn.secret,
          inject,
          pattern,
          ports,
          ...(pathPrefix === undefined ? {} : { pathPrefix }),
          readOnly,
          plainHttp,
          ...(github ? { github: github.rule } : {}),
          injection: Object.freeze({ ...inject, secret: conn.secret, ...(github ? { mint: github.mint, github: { service: github.rule.service, pushBranches: github.rule.pushBranches } } : {}) }),
          label: `${bundle.name}/${conn.name} (${narrowing.join(', ')})`,
        };
        const key = `${pattern.text}\u0000${pathPrefix ?? '\u0001'}`;
        const peers = bySpecificity.get(key);
        const clash = peers?.find((other) => portsOverlap(other.ports, ports) && !disjointRepositories(other.github, rule.github));
        if (clash) throw ambiguity(clash, rule);
        if (peers) peers.push(rule);
        else bySpecificity.set(key, [rule]);
        credentials.add(pattern, rule);
      }
    }
  }
  return { bundles: [...names], credentials, allow, addresses: compileCidrs(blocks) };
}

/**
 * A GitHub App connection's rule for one of its hosts: basic x-access-token
 * for git on github.com, a bearer on api.github.com; the token minted for the
 * connection's repositories and permissions.
 */
function githubRule(settings: GithubSettings, host: string): { rule: GithubRule; inject: Inject; mint: MintNarrowing } {
  const service = host === GITHUB_API_HOST ? 'api' : 'git';
  if (host !== GITHUB_API_HOST && host !== GITHUB_GIT_HOST) throw new Error(`unreachable: a GitHub App connection on ${host}`);
  const repositories = settings.repositories ? new Set(settings.repositories.map((r) => r.toLowerCase())) : undefined;
  const names = mintRepositories(settings);
  const mint: MintNarrowing = Object.freeze({ ...(names ? { repositories: names } : {}), ...(settings.permissions ? { permissions: settings.permissions } : {}) });
  const inject: Inject = service === 'git' ? { basic: { username: 'x-access-token' } } : { header: 'Authorization', value: 'Bearer {{secret}}' };
  return { rule: { service, ...(repositories ? { repositories } : {}), pushBranches: settings.pushBranches }, inject, mint };
}

/** Two GitHub rules for different repositories of the same host do not compete: each request is about one repository. */
function disjointRepositories(a: GithubRule | undefined, b: GithubRule | undefined): boolean {
  if (!a?.repositories || !b?.repositories) return false;
  for (const r of a.repositories) if (b.repositories.has(r)) return false;
  return true;
}

function entryOf(entry: HostEntry | string, where: string): { pattern: HostPattern; ports: ReadonlySet<number> } {
  const host = typeof entry === 'string' ? entry : entry.host;
  const r = parseHostPattern(host);
  if (!r.ok) throw invalidInput(`${where}: ${r.error}`, 'invalid_bundles');
  const ports = typeof entry === 'string' ? undefined : entry.ports;
  if (ports?.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw invalidInput(`${where}: ports must be 1-65535`, 'invalid_bundles');
  return { pattern: r.value, ports: portsOf(ports) };
}

/**
 * The (pattern, ports) pairs a connection's credential applies to: its allowed
 * websites, or only narrow.host with the ports of the websites covering it.
 * Duplicates within one connection merge, so a connection never clashes with itself.
 */
function credentialPatterns(
  websites: ReadonlyArray<{ pattern: HostPattern; ports: ReadonlySet<number> }>,
  narrowHost: string | undefined,
  where: string,
): Array<[HostPattern, ReadonlySet<number>]> {
  const merged = new Map<string, [HostPattern, Set<number>]>();
  const add = (pattern: HostPattern, ports: ReadonlySet<number>) => {
    const cur = merged.get(pattern.text);
    if (cur) for (const p of ports) cur[1].add(p);
    else merged.set(pattern.text, [pattern, new Set(ports)]);
  };
  if (narrowHost === undefined) {
    for (const w of websites) add(w.pattern, w.ports);
  } else {
    const r = parseHostPattern(narrowHost);
    if (!r.ok) throw invalidInput(`${where}: narrow.host: ${r.error}`, 'invalid_bundles');
    const covering = websites.filter((w) => patternCovers(w.pattern, r.value));
    if (covering.length === 0) throw invalidInput(`${where}: narrow.host: "${narrowHost}" is not one of (or covered by) allowedWebsites`, 'invalid_bundles');
    for (const w of covering) add(r.value, w.ports);
  }
  return [...merged.values()];
}

function ambiguity(a: CredentialRule, b: CredentialRule) {
  const prefix = a.pathPrefix === undefined ? 'no path prefix' : `path prefix ${a.pathPrefix}`;
  if (a.github && b.github) {
    return invalidInput(
      `ambiguous connections: ${a.bundle}/${a.connection} and ${b.bundle}/${b.connection} both match ${a.pattern.text} with ${prefix}; ` +
        'give each GitHub App connection its own github.repositories (no repository in both) or remove one',
      'ambiguous_connections',
    );
  }
  return invalidInput(
    `ambiguous connections: ${a.bundle}/${a.connection} and ${b.bundle}/${b.connection} both match ${a.pattern.text} with ${prefix}; ` +
      'make one more specific (narrow.host or narrow.pathPrefix) or remove one',
    'ambiguous_connections',
  );
}

/**
 * The union of bundles from several scopes (org, workspace, channel), for one
 * policy. A bundle attached at two scopes appears once; two different bundles
 * with the same name are an error.
 */
export function mergeBundles(...lists: ReadonlyArray<readonly Bundle[]>): Bundle[] {
  const byName = new Map<string, { bundle: Bundle; json: string }>();
  const out: Bundle[] = [];
  for (const list of lists) {
    for (const bundle of list) {
      const json = JSON.stringify(bundle);
      const seen = byName.get(bundle.name);
      if (seen) {
        if (seen.json !== json) throw invalidInput(`bundle "${bundle.name}" is defined twice with different contents`, 'invalid_bundles');
        continue;
      }
      byName.set(bundle.name, { bundle, json });
      out.push(bundle);
    }
  }
  return out;
}
