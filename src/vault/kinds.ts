import { createPrivateKey } from 'node:crypto';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { invalidInput } from '../errors.js';

/**
 * Credential kinds and the documents that describe the dynamic ones. Checked
 * when a secret is written (so that a typo fails at `secret set`, not at the
 * first request) and again when it is opened. Messages name the field and what
 * was expected, never what was found.
 */
export const CREDENTIAL_KINDS = ['static', 'github-app', 'oauth2-client-credentials', 'aws-sigv4'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export function isCredentialKind(value: string): value is CredentialKind {
  return (CREDENTIAL_KINDS as readonly string[]).includes(value);
}

const id = z.union([z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected an id of letters, digits, ".", "_" or "-"'), z.number().int().positive()]).transform(String);
const httpsUrl = z.url({ protocol: /^https$/, error: 'expected an https:// URL' });
const token = (what: string) => z.string().min(1, `expected a non-empty ${what}`).max(4096).refine((v) => !/[\r\n\0]/.test(v), `the ${what} contains a line break`);

export const githubAppSchema = z
  .object({
    appId: id,
    installationId: id,
    privateKey: z
      .string()
      .refine((pem) => isRsaPrivateKey(pem), 'expected the GitHub App private key in PEM form (-----BEGIN RSA PRIVATE KEY----- ...)'),
    apiUrl: httpsUrl.default('https://api.github.com'),
  })
  .strict();

export const oauth2ClientCredentialsSchema = z
  .object({
    tokenUrl: httpsUrl,
    clientId: token('client id'),
    clientSecret: token('client secret'),
    scope: z.string().max(4096).optional(),
    audience: z.string().max(2048).optional(),
    /** client_secret_basic (RFC 6749 2.3.1, the default) or client_secret_post. */
    clientAuth: z.enum(['basic', 'post']).default('basic'),
  })
  .strict();

export const awsSigV4Schema = z
  .object({
    accessKeyId: token('access key id'),
    secretAccessKey: token('secret access key'),
    sessionToken: token('session token').optional(),
    region: z.string().regex(/^[a-z0-9-]{1,40}$/, 'expected an AWS region such as us-east-1'),
    service: z.string().regex(/^[a-z0-9-]{1,60}$/, 'expected an AWS service signing name such as s3 or execute-api'),
  })
  .strict();

export type GithubAppCredential = z.infer<typeof githubAppSchema>;
export type OAuth2ClientCredential = z.infer<typeof oauth2ClientCredentialsSchema>;
export type AwsSigV4Credential = z.infer<typeof awsSigV4Schema>;

const SCHEMAS = {
  'github-app': githubAppSchema,
  'oauth2-client-credentials': oauth2ClientCredentialsSchema,
  'aws-sigv4': awsSigV4Schema,
} as const;
type DynamicKind = keyof typeof SCHEMAS;

function isRsaPrivateKey(pem: string): boolean {
  try {
    return createPrivateKey(pem).asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}

/**
 * Validates a value for its kind and returns the bytes to seal: a static value
 * as given; a dynamic kind's JSON or YAML document as canonical JSON.
 */
export function prepareSecretValue(kind: CredentialKind, value: Buffer): Buffer {
  if (kind === 'static') {
    // Static secrets are sent in HTTP headers: a line break there would be header injection.
    if (/[\r\n\0]/.test(value.toString('latin1'))) {
      throw invalidInput('the secret value contains a line break or NUL byte; static secrets are sent in HTTP headers', 'invalid_secret_value');
    }
    return value;
  }
  return Buffer.from(JSON.stringify(parseCredentialDocument(kind, value.toString('utf8'))), 'utf8');
}

export function parseCredentialDocument(kind: 'github-app', text: string): GithubAppCredential;
export function parseCredentialDocument(kind: 'oauth2-client-credentials', text: string): OAuth2ClientCredential;
export function parseCredentialDocument(kind: 'aws-sigv4', text: string): AwsSigV4Credential;
export function parseCredentialDocument(kind: DynamicKind, text: string): unknown;
export function parseCredentialDocument(kind: DynamicKind, text: string): unknown {
  // YAML is a superset of JSON, so one parser takes both. Its error messages
  // quote the offending source line, which may hold a secret: report only the position.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw invalidInput(`the ${kind} document is not valid JSON or YAML (${first.code} at offset ${first.pos[0]})`, 'invalid_credential_document');
  }
  const parsed: unknown = doc.toJS();
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidInput(`the ${kind} document must be a mapping of fields (${Object.keys(SCHEMAS[kind].shape).join(', ')})`, 'invalid_credential_document');
  }
  const result = SCHEMAS[kind].safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      const field = issue.path.map(String).join('.') || '(document)';
      return `${field}: ${issue.message}`;
    });
    throw invalidInput(`the ${kind} document is invalid: ${problems.join('; ')}`, 'invalid_credential_document');
  }
  return result.data;
}
