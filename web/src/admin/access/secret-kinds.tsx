import type { CredentialKind } from './types';

/**
 * The credential kinds of src/vault/kinds.ts and the value each one is
 * stored as: a static secret is the value itself; a dynamic kind is a JSON
 * document of its fields (docs/VAULT.md), assembled here from a small form.
 */
export interface KindField {
  key: string;
  label: string;
  /** Write-only: never shown again, typed into a password field (or a masked text area). */
  secret?: boolean;
  multiline?: boolean;
  optional?: boolean;
  placeholder?: string;
  hint?: string;
  choices?: string[];
}

export const KINDS: Array<{ kind: CredentialKind; label: string; about: string; fields: KindField[] }> = [
  { kind: 'static', label: 'Static value', about: 'A token or password, sent as the connection injects it.', fields: [{ key: 'value', label: 'Value', secret: true }] },
  {
    kind: 'github-app',
    label: 'GitHub App',
    about: 'The proxy mints an installation token from the app key when a request needs it.',
    fields: [
      { key: 'appId', label: 'App ID', placeholder: '123456' },
      { key: 'installationId', label: 'Installation ID', placeholder: '7890123' },
      { key: 'privateKey', label: 'Private key (PEM)', secret: true, multiline: true, placeholder: '-----BEGIN RSA PRIVATE KEY-----' },
      { key: 'apiUrl', label: 'API URL', optional: true, placeholder: 'https://api.github.com', hint: 'For GitHub Enterprise Server; default https://api.github.com' },
    ],
  },
  {
    kind: 'oauth2-client-credentials',
    label: 'OAuth 2.0 client credentials',
    about: 'The proxy fetches an access token with the client credentials grant.',
    fields: [
      { key: 'tokenUrl', label: 'Token URL', placeholder: 'https://auth.example.com/oauth/token' },
      { key: 'clientId', label: 'Client ID' },
      { key: 'clientSecret', label: 'Client secret', secret: true },
      { key: 'scope', label: 'Scope', optional: true },
      { key: 'audience', label: 'Audience', optional: true },
      { key: 'clientAuth', label: 'Client authentication', choices: ['basic', 'post'], hint: 'basic: HTTP Basic (the default); post: in the form body' },
    ],
  },
  {
    kind: 'aws-sigv4',
    label: 'AWS SigV4',
    about: 'The proxy signs each request (AWS Signature Version 4).',
    fields: [
      { key: 'accessKeyId', label: 'Access key ID' },
      { key: 'secretAccessKey', label: 'Secret access key', secret: true },
      { key: 'sessionToken', label: 'Session token', secret: true, optional: true },
      { key: 'region', label: 'Region', placeholder: 'us-east-1' },
      { key: 'service', label: 'Service', placeholder: 's3' },
    ],
  },
];

export const kindOf = (kind: CredentialKind) => KINDS.find((k) => k.kind === kind)!;

/** The stored value: a static value as typed; a dynamic kind's given fields as JSON. */
export function assembleValue(kind: CredentialKind, values: Record<string, string>): string {
  if (kind === 'static') return values.value ?? '';
  const doc: Record<string, string> = {};
  for (const f of kindOf(kind).fields) {
    const v = f.multiline ? (values[f.key] ?? '') : (values[f.key] ?? '').trim();
    if (v) doc[f.key] = v;
    else if (f.choices) doc[f.key] = f.choices[0]!;
  }
  return JSON.stringify(doc);
}

/** `the aws-sigv4 document is invalid: region: expected …` → the field and its message. */
export function documentFieldError(message: string): { key: string; message: string } | undefined {
  const m = /document is invalid: ([A-Za-z]+): ([^;]+)/.exec(message);
  return m ? { key: m[1]!, message: m[2]! } : undefined;
}
