/**
 * The bundle-file format of CONTRACT.md, as one zod schema. Field checks
 * (host patterns, header names, templates, path prefixes) live here so every
 * error carries its field path; cross-field checks (unique names, narrow.host
 * covered by allowedWebsites) run at the end with paths too.
 * Parsed values are normalised: host patterns canonical, prefixes normalised.
 */
import { z } from 'zod';
import { classifyAddress } from './address-class.js';
import { parseHostPattern, patternCovers, type HostPattern } from './hosts.js';
import { GITHUB_API_HOST, GITHUB_GIT_HOST, GITHUB_GIT_USERNAME, githubSettingsSchema, type GithubSettings } from './github-settings.js';
import { parsePathPrefix } from './paths.js';

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const SECRET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\x20-\x7e\t]*$/;
export const SECRET_PLACEHOLDER = '{{secret}}';

/**
 * Vault names under this prefix hold members' personal connector secrets
 * (`personal.<member hash>.<connector>`). No bundle may name one: an org
 * bundle that could would send a member's own credential wherever the bundle
 * allows, in every channel it is attached to.
 */
export const PERSONAL_SECRET_PREFIX = 'personal.';
/** A personal connector's name, short and lower-case so that its derived secret name is a valid vault name. */
export const PERSONAL_CONNECTOR_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,36}$/;

// Headers the proxy owns: hop-by-hop (RFC 9110 7.6.1), framing and routing.
const FORBIDDEN_HEADERS = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
]);

const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `expected a ${what} name: letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters`);

const port = z.number('expected a port number').int('expected a whole port number').min(1, 'expected a port 1-65535').max(65535, 'expected a port 1-65535');

const hostPattern = z.string().transform((text, ctx) => {
  const r = parseHostPattern(text);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  }
  return r.value.text;
});

export const hostEntrySchema = z
  .union([
    hostPattern,
    z.strictObject({
      host: hostPattern,
      ports: z
        .array(port)
        .min(1, 'expected at least one port (omit "ports" for the defaults 443 and 80)')
        .transform((ps) => [...new Set(ps)].sort((a, b) => a - b))
        .optional(),
    }),
  ], { error: hostEntryError })
  .transform((e) => (typeof e === 'string' ? { host: e } : e));

/**
 * A union's own message is "Invalid input": say instead what was wrong with the
 * shape that was given (a host text, or {host, ports}).
 */
function hostEntryError(issue: { code?: string; input?: unknown; errors?: ReadonlyArray<ReadonlyArray<{ message: string; path: PropertyKey[] }>> }): string | undefined {
  if (issue.code !== 'invalid_union') return undefined;
  const input = issue.input;
  const branch = typeof input === 'string' ? issue.errors?.[0] : input !== null && typeof input === 'object' && !Array.isArray(input) ? issue.errors?.[1] : undefined;
  const first = branch?.[0];
  if (!first) return 'expected a host ("example.com", "*.example.com", an IP or a CIDR) or {host, ports}';
  return first.path.length ? `${first.path.map(String).join('.')}: ${first.message}` : first.message;
}

const headerName = z.string().superRefine((h, ctx) => {
  if (!TOKEN.test(h)) ctx.addIssue({ code: 'custom', message: 'expected an HTTP header name (a token, e.g. Authorization)' });
  else if (FORBIDDEN_HEADERS.has(h.toLowerCase()) || h.toLowerCase().startsWith('proxy-')) {
    ctx.addIssue({ code: 'custom', message: `"${h}" is managed by the proxy and cannot carry a credential` });
  }
});

const template = z.string().superRefine((v, ctx) => {
  if (!FIELD_VALUE.test(v)) {
    ctx.addIssue({ code: 'custom', message: 'expected printable ASCII (no control characters or line breaks)' });
    return;
  }
  const rest = v.split(SECRET_PLACEHOLDER);
  if (rest.length < 2) {
    ctx.addIssue({ code: 'custom', message: `expected the template to contain ${SECRET_PLACEHOLDER} where the secret goes` });
  } else if (rest.some((part) => part.includes('{{') || part.includes('}}'))) {
    ctx.addIssue({ code: 'custom', message: `the only placeholder is ${SECRET_PLACEHOLDER} (exactly, no spaces)` });
  }
});

const injectSchema = z
  .strictObject({
    header: headerName.optional(),
    value: template.optional(),
    basic: z
      .strictObject({
        username: z.string().regex(/^[\x20-\x39\x3b-\x7e]*$/, 'expected printable ASCII without ":"'),
      })
      .optional(),
  })
  .superRefine((inj, ctx) => {
    const hasHeader = inj.header !== undefined || inj.value !== undefined;
    if (hasHeader && inj.basic !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of {header, value} or {basic: {username}}, not both' });
    } else if (!hasHeader && inj.basic === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected {header, value} or {basic: {username}}' });
    } else if (hasHeader && inj.header === undefined) {
      ctx.addIssue({ code: 'custom', path: ['header'], message: 'expected a header name to go with "value"' });
    } else if (hasHeader && inj.value === undefined) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `expected a value template, e.g. "Bearer ${SECRET_PLACEHOLDER}"` });
    }
  })
  .transform((inj): Inject => (inj.basic ? { basic: inj.basic } : { header: inj.header!, value: inj.value! }));

const pathPrefix = z.string().transform((text, ctx) => {
  const r = parsePathPrefix(text);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  }
  return r.value;
});

const narrowSchema = z.strictObject({
  host: hostPattern.optional(),
  pathPrefix: pathPrefix.optional(),
  readOnly: z.boolean().optional(),
});

const secretName = z
  .string()
  .regex(SECRET_NAME_PATTERN, 'expected a secret name: lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters');

const orgSecretName = secretName.superRefine((s, ctx) => {
  if (!s.startsWith(PERSONAL_SECRET_PREFIX)) return;
  ctx.addIssue({
    code: 'custom',
    message: `"${s}" is in the ${PERSONAL_SECRET_PREFIX} namespace of members' personal secrets: a bundle can never send one (a member's connector uses it in their own DMs only)`,
  });
});

/** narrow.host must be one of, or covered by, the allowed websites. */
function narrowCovered(c: { allowedWebsites: HostEntry[]; narrow?: { host?: string | undefined } | undefined }, ctx: z.RefinementCtx): void {
  if (c.narrow?.host === undefined) return;
  const narrow = pattern(c.narrow.host);
  if (!c.allowedWebsites.some((e) => patternCovers(pattern(e.host), narrow))) {
    ctx.addIssue({
      code: 'custom',
      path: ['narrow', 'host'],
      message: `"${c.narrow.host}" is not one of (or covered by) allowedWebsites`,
    });
  }
}

/**
 * A connection of an org bundle: any vault name outside the personal namespace.
 * With `github`, it is a GitHub App connection: its websites and injection
 * are GitHub's (github.com for git, api.github.com for the REST API) and may
 * be left out.
 */
export const connectionSchema = z
  .strictObject({
    name: name('connection'),
    secret: orgSecretName,
    allowedWebsites: z.array(hostEntrySchema).min(1, 'expected at least one host').optional(),
    inject: injectSchema.optional(),
    narrow: narrowSchema.optional(),
    /**
     * The credential is injected only when the upstream leg is TLS; `true` opts
     * this connection into plain http too (e.g. a service on loopback).
     */
    plainHttp: z.boolean().optional(),
    github: githubSettingsSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.github) return githubConnectionProblems(c, ctx);
    if (c.allowedWebsites === undefined) ctx.addIssue({ code: 'custom', path: ['allowedWebsites'], message: 'expected at least one host' });
    if (c.inject === undefined) ctx.addIssue({ code: 'custom', path: ['inject'], message: 'expected {header, value} or {basic: {username}}' });
  })
  .transform((c): Connection => {
    const { github, allowedWebsites, inject, ...rest } = c;
    if (!github) return { ...rest, allowedWebsites: allowedWebsites!, inject: inject! };
    return { ...rest, allowedWebsites: allowedWebsites ?? [{ host: GITHUB_GIT_HOST }, { host: GITHUB_API_HOST }], inject: { basic: { username: GITHUB_GIT_USERNAME } }, github };
  })
  .superRefine(narrowCovered);

/**
 * A GitHub App connection takes its shape from GitHub: its websites may be
 * github.com and api.github.com only, its injection is the proxy's to choose
 * per host, and `repositories` is its narrowing.
 */
function githubConnectionProblems(c: { allowedWebsites?: HostEntry[] | undefined; inject?: Inject | undefined; narrow?: unknown; plainHttp?: boolean | undefined }, ctx: z.RefinementCtx): void {
  c.allowedWebsites?.forEach((w, i) => {
    if (w.host !== GITHUB_GIT_HOST && w.host !== GITHUB_API_HOST) {
      ctx.addIssue({ code: 'custom', path: ['allowedWebsites', i], message: `a GitHub App connection reaches ${GITHUB_GIT_HOST} and ${GITHUB_API_HOST} only (omit allowedWebsites for both)` });
    }
  });
  if (c.inject !== undefined && !('basic' in c.inject && c.inject.basic.username === GITHUB_GIT_USERNAME)) {
    ctx.addIssue({ code: 'custom', path: ['inject'], message: `a GitHub App connection injects its token itself (basic ${GITHUB_GIT_USERNAME} for git, a bearer for the API): omit inject` });
  }
  if (c.narrow !== undefined) ctx.addIssue({ code: 'custom', path: ['narrow'], message: 'a GitHub App connection is narrowed by github.repositories (and the token by github.permissions): omit narrow' });
  if (c.plainHttp) ctx.addIssue({ code: 'custom', path: ['plainHttp'], message: 'GitHub is reached over TLS only' });
}

/**
 * Why a personal connector may not list this host pattern, or undefined.
 * Unlocking a non-public address (loopback, private, metadata, ...) is an
 * admin's decision in an org bundle, never a member's: a personal connector
 * lists host names and public IP addresses, and no address block at all.
 */
export function personalHostProblem(host: string): string | undefined {
  const r = parseHostPattern(host);
  if (!r.ok) return r.error;
  const p = r.value;
  if (p.kind === 'cidr') {
    return `"${p.text}" is an address block: a personal connector lists host names and public IP addresses only (an admin can allow a block in an org bundle)`;
  }
  if (p.kind !== 'ip') return undefined;
  const c = classifyAddress(p.ip);
  if (c.class === 'public') return undefined;
  const what = c.class === 'metadata' ? 'a cloud metadata address' : `a ${c.class} address`;
  const range = c.range ? ` (${c.range})` : c.embedded ? ` (it embeds ${c.embedded.address})` : '';
  return `"${p.text}" is ${what}${range}: only an admin, in an org bundle, can allow a non-public address`;
}

const personalHostEntry = hostEntrySchema.superRefine((e, ctx) => {
  const problem = personalHostProblem(e.host);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * A member's personal connector: its secret is in the personal namespace (the
 * caller derives it from the member and the connector name), and its websites
 * unlock no forbidden address.
 */
export const personalConnectionSchema = z
  .strictObject({
    name: z
      .string()
      .regex(PERSONAL_CONNECTOR_NAME_PATTERN, 'expected a connector name: lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, at most 37 characters'),
    secret: secretName.refine((s) => s.startsWith(PERSONAL_SECRET_PREFIX), `expected a name in the ${PERSONAL_SECRET_PREFIX} namespace`),
    allowedWebsites: z.array(personalHostEntry).min(1, 'expected at least one host'),
    inject: injectSchema,
    narrow: narrowSchema.optional(),
  })
  .superRefine(narrowCovered);

const RESERVED_BUNDLE_NAMES = new Set(['apply', 'export']);

export const bundleSchema = z
  .strictObject({
    name: name('bundle'),
    domains: z.array(hostEntrySchema).default([]),
    connections: z.array(connectionSchema).default([]),
  })
  .superRefine((b, ctx) => {
    // The model connection's own name in decisions and audit (engines/model-connection.ts).
    if (b.name === 'tagbox-model') ctx.addIssue({ code: 'custom', path: ['name'], message: '"tagbox-model" is reserved for the model connection Tagbox adds to every session' });
    // The API's bundles-as-code routes (/bundles/apply, /bundles/export) sit where such a bundle's own would.
    if (RESERVED_BUNDLE_NAMES.has(b.name.toLowerCase())) ctx.addIssue({ code: 'custom', path: ['name'], message: `"${b.name}" is reserved (the API's /bundles/${b.name.toLowerCase()}); choose another name` });
    const seen = new Map<string, number>();
    b.connections.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['connections', i, 'name'], message: `duplicate connection name "${c.name}" (also connections[${first}])` });
      } else seen.set(c.name, i);
    });
  });

export const bundleFileSchema = z
  .strictObject({ bundles: z.array(bundleSchema) })
  .superRefine((f, ctx) => {
    const seen = new Map<string, number>();
    f.bundles.forEach((b, i) => {
      const first = seen.get(b.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['bundles', i, 'name'], message: `duplicate bundle name "${b.name}" (also bundles[${first}])` });
      } else seen.set(b.name, i);
    });
  });

/** Re-parses a canonical pattern (already validated by the schema). */
function pattern(text: string): HostPattern {
  const r = parseHostPattern(text);
  if (!r.ok) throw new Error(`unreachable: ${r.error}`);
  return r.value;
}

export interface HostEntry {
  /** A canonical host pattern: `example.com`, `*.example.com`, an IP or a CIDR. */
  host: string;
  /** Exactly the ports allowed; absent means 443 and 80. */
  ports?: number[];
}

export type Inject = { header: string; value: string } | { basic: { username: string } };

export interface Narrow {
  host?: string;
  pathPrefix?: string;
  readOnly?: boolean;
}

export interface Connection {
  name: string;
  secret: string;
  allowedWebsites: HostEntry[];
  inject: Inject;
  narrow?: Narrow;
  /** Inject over plain http too (default: TLS only; a plain-http request that would get the credential is blocked). */
  plainHttp?: boolean;
  /** A GitHub App connection (github-settings.ts): the token is minted by the proxy and injected per host. */
  github?: GithubSettings;
}

export interface Bundle {
  name: string;
  domains: HostEntry[];
  connections: Connection[];
}

export interface BundleFile {
  bundles: Bundle[];
}

/** What a bundle file may contain before validation (domains may be plain strings). */
export type BundleFileInput = z.input<typeof bundleFileSchema>;
