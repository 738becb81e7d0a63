import { describe, expect, it } from 'vitest';
import { TagboxError } from '../../src/errors.js';
import { parseBundleFile, validateBundles } from '../../src/policy/bundle-file.js';

const CONTRACT_EXAMPLE = `bundles:
  - name: platform-eng
    domains:                     # allowed without a credential
      - registry.npmjs.org
      - "*.githubusercontent.com"
      - host: internal.example.com
        ports: [443, 8443]
    connections:
      - name: github
        secret: gh-token         # a name in the vault
        allowedWebsites: [api.github.com, github.com]
        inject:                  # exactly one of header | basic
          header: Authorization
          value: "Bearer {{secret}}"
        narrow:                  # optional; all given parts must match
          host: api.github.com
          pathPrefix: /repos/acme/
          readOnly: true         # GET, HEAD, OPTIONS only
`;

function errorOf(text: string, file = 'bundles.yaml'): TagboxError {
  try {
    parseBundleFile(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(TagboxError);
    expect((error as TagboxError).exitCode).toBe(2);
    return error as TagboxError;
  }
  throw new Error('expected the bundle file to be rejected');
}

/** A one-bundle file with one connection, with `patch` applied as YAML lines. */
function withConnection(lines: string): string {
  return `bundles:
  - name: team
    connections:
      - name: api
${lines
  .trim()
  .split('\n')
  .map((l) => `        ${l}`)
  .join('\n')}
`;
}

describe('parseBundleFile', () => {
  it('parses the CONTRACT.md example, normalised', () => {
    expect(parseBundleFile(CONTRACT_EXAMPLE, 'bundles.yaml')).toEqual({
      bundles: [
        {
          name: 'platform-eng',
          domains: [{ host: 'registry.npmjs.org' }, { host: '*.githubusercontent.com' }, { host: 'internal.example.com', ports: [443, 8443] }],
          connections: [
            {
              name: 'github',
              secret: 'gh-token',
              allowedWebsites: [{ host: 'api.github.com' }, { host: 'github.com' }],
              inject: { header: 'Authorization', value: 'Bearer {{secret}}' },
              narrow: { host: 'api.github.com', pathPrefix: '/repos/acme/', readOnly: true },
            },
          ],
        },
      ],
    });
  });

  it('accepts basic injection, IPs, CIDRs and IDN, and normalises patterns', () => {
    const f = parseBundleFile(
      `bundles:
  - name: b
    domains: [Bücher.Example., "*.EXAMPLE.com", 10.0.0.0/8, "[::1]", {host: 192.168.1.5, ports: [8080, 8080, 22]}]
    connections:
      - name: git
        secret: git.token_1
        allowedWebsites: [git.example.com]
        inject: { basic: { username: x-access-token } }
`,
      'f.yaml',
    );
    const b = f.bundles[0]!;
    expect(b.domains.map((d) => d.host)).toEqual(['xn--bcher-kva.example', '*.example.com', '10.0.0.0/8', '::1', '192.168.1.5']);
    expect(b.domains[4]!.ports).toEqual([22, 8080]);
    expect(b.connections[0]!.inject).toEqual({ basic: { username: 'x-access-token' } });
  });

  it('defaults domains and connections to empty lists', () => {
    expect(parseBundleFile('bundles:\n  - name: empty\n', 'f.yaml')).toEqual({ bundles: [{ name: 'empty', domains: [], connections: [] }] });
    expect(parseBundleFile('bundles: []\n', 'f.yaml')).toEqual({ bundles: [] });
  });

  it('names file, line, bundle, connection, field path and expectation', () => {
    const e = errorOf(CONTRACT_EXAMPLE.replace('header: Authorization', 'header: Host'));
    expect(e.message).toBe(
      'bundles.yaml:13: bundle "platform-eng", connection "github": bundles[0].connections[0].inject.header: "Host" is managed by the proxy and cannot carry a credential',
    );
  });

  it.each([
    ['invalid YAML', 'bundles: [\n', /^bundles\.yaml:\d+: invalid YAML/],
    ['not a mapping', '- a\n- b\n', /expected a mapping with a "bundles" list/],
    ['empty file', '', /expected a mapping with a "bundles" list/],
    ['missing bundles', 'other: 1\n', /unknown key "other"/],
    ['missing bundles (2)', '{}\n', /bundles: is required/],
    ['unknown key in bundle', 'bundles:\n  - name: a\n    domian: [x.com]\n', /^bundles\.yaml:2: bundle "a": bundles\[0\]: unknown key "domian"/],
    ['bad bundle name', 'bundles:\n  - name: "a b"\n', /bundles\[0\]\.name: expected a bundle name/],
    ['missing bundle name', 'bundles:\n  - domains: []\n', /bundle #1: bundles\[0\]\.name: is required/],
    ['duplicate bundle', 'bundles:\n  - name: a\n  - name: a\n', /^bundles\.yaml:3: bundle "a": bundles\[1\]\.name: duplicate bundle name "a"/],
    ['bad domain', 'bundles:\n  - name: a\n    domains:\n      - ok.com\n      - "*"\n', /^bundles\.yaml:5: bundle "a": bundles\[0\]\.domains\[1\]: "\*" alone is not allowed/],
    ['scheme', 'bundles:\n  - name: a\n    domains: ["https://x.com"]\n', /without a scheme/],
    ['path', 'bundles:\n  - name: a\n    domains: ["x.com/api"]\n', /paths are not allowed/],
    ['user-info', 'bundles:\n  - name: a\n    domains: ["u@x.com"]\n', /user-info/],
    ['port in string', 'bundles:\n  - name: a\n    domains: ["x.com:8443"]\n', /a port does not belong in the host/],
    ['bad port', 'bundles:\n  - name: a\n    domains: [{host: x.com, ports: [0]}]\n', /domains\[0\]\.ports\[0\]: expected a port 1-65535/],
    ['empty ports', 'bundles:\n  - name: a\n    domains: [{host: x.com, ports: []}]\n', /expected at least one port/],
    ['bad entry type', 'bundles:\n  - name: a\n    domains: [42]\n', /domains\[0\]: expected a host pattern string or \{host, ports\}/],
    ['unknown key in entry', 'bundles:\n  - name: a\n    domains: [{host: x.com, port: 1}]\n', /domains\[0\]: unknown key "port"/],
  ])('rejects %s', (_name, text, message) => {
    expect(errorOf(text).message).toMatch(message);
  });

  it.each([
    ['bad secret name', 'secret: GH_TOKEN\nallowedWebsites: [x.com]\ninject: {header: Authorization, value: "Bearer {{secret}}"}', /connection "api": bundles\[0\]\.connections\[0\]\.secret: expected a secret name/],
    ['long secret name', `secret: ${'a'.repeat(64)}\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}"}`, /secret: expected a secret name/],
    ['no placeholder', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Authorization, value: "Bearer token"}', /inject\.value: expected the template to contain \{\{secret\}\}/],
    ['spaced placeholder', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Authorization, value: "Bearer {{ secret }}"}', /inject\.value: expected the template to contain/],
    ['other placeholder', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Authorization, value: "{{secret}} {{user}}"}', /the only placeholder is \{\{secret\}\}/],
    ['CRLF in value', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Authorization, value: "{{secret}}\\r\\nX-Evil: 1"}', /printable ASCII/],
    ['bad header token', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: "X Bad", value: "{{secret}}"}', /inject\.header: expected an HTTP header name/],
    ['hop-by-hop header', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Connection, value: "{{secret}}"}', /managed by the proxy/],
    ['content-length', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: content-length, value: "{{secret}}"}', /managed by the proxy/],
    ['transfer-encoding', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Transfer-Encoding, value: "{{secret}}"}', /managed by the proxy/],
    ['proxy header', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: Proxy-Authorization, value: "{{secret}}"}', /managed by the proxy/],
    ['both header and basic', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}", basic: {username: u}}', /exactly one of/],
    ['neither', 'secret: s\nallowedWebsites: [x.com]\ninject: {}', /expected \{header, value\} or \{basic/],
    ['header without value', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A}', /inject\.value: expected a value template/],
    ['colon in basic user', 'secret: s\nallowedWebsites: [x.com]\ninject: {basic: {username: "a:b"}}', /inject\.basic\.username: expected printable ASCII without ":"/],
    ['no websites', 'secret: s\nallowedWebsites: []\ninject: {header: A, value: "{{secret}}"}', /allowedWebsites: expected at least one host/],
    ['narrow host not covered', 'secret: s\nallowedWebsites: [api.x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {host: other.x.com}', /narrow\.host: "other\.x\.com" is not one of \(or covered by\) allowedWebsites/],
    ['narrow wildcard not covered', 'secret: s\nallowedWebsites: [api.x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {host: "*.x.com"}', /not one of \(or covered by\)/],
    ['pathPrefix without slash', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {pathPrefix: repos/}', /narrow\.pathPrefix: a pathPrefix must start with "\/"/],
    ['pathPrefix with dots', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {pathPrefix: /a/../b}', /"\." or "\.\." segments/],
    ['readOnly not boolean', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {readOnly: "yes"}', /narrow\.readOnly: expected boolean/],
    ['unknown narrow key', 'secret: s\nallowedWebsites: [x.com]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {methods: [GET]}', /unknown key "methods"/],
  ])('rejects a connection with %s', (_name, lines, message) => {
    expect(errorOf(withConnection(lines)).message).toMatch(message);
  });

  it('accepts narrow.host covered by a wildcard website', () => {
    const f = parseBundleFile(withConnection('secret: s\nallowedWebsites: ["*.x.com"]\ninject: {header: A, value: "{{secret}}"}\nnarrow: {host: API.x.com}'), 'f.yaml');
    expect(f.bundles[0]!.connections[0]!.narrow).toEqual({ host: 'api.x.com' });
  });

  it('rejects duplicate connection names within a bundle, not across bundles', () => {
    const conn = (name: string) => `      - name: ${name}\n        secret: s\n        allowedWebsites: [x.com]\n        inject: {header: A, value: "{{secret}}"}\n`;
    const dup = `bundles:\n  - name: a\n    connections:\n${conn('c')}${conn('c')}`;
    expect(errorOf(dup).message).toMatch(/^bundles\.yaml:8: bundle "a", connection "c": bundles\[0\]\.connections\[1\]\.name: duplicate connection name "c"/);
    const ok = `bundles:\n  - name: a\n    connections:\n${conn('c')}  - name: b\n    connections:\n${conn('c')}`;
    expect(parseBundleFile(ok, 'f.yaml').bundles).toHaveLength(2);
  });

  it('reports several problems at once', () => {
    const e = errorOf('bundles:\n  - name: a\n    domains: ["*", "https://x"]\n');
    expect(e.message.split('\n')).toHaveLength(2);
  });

  it('validateBundles checks data from elsewhere (no lines)', () => {
    expect(() => validateBundles([{ name: 'a', domains: ['*'] }], 'store')).toThrow(/^store: bundle "a": bundles\[0\]\.domains\[0\]/);
    expect(validateBundles([{ name: 'a', domains: ['X.com'] }], 'store')).toEqual([{ name: 'a', domains: [{ host: 'x.com' }], connections: [] }]);
  });

  it('says what is wrong with a host entry, in either shape, not just "invalid"', () => {
    const problems = (entry: unknown) => {
      try {
        validateBundles([{ name: 'b', domains: [entry] }], 'test');
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problems('https://example.com')).toMatch(/without a scheme/);
    expect(problems('bad host')).toMatch(/whitespace/);
    expect(problems({ host: 'bad host' })).toMatch(/host: .*whitespace/);
    expect(problems({ host: 'a.example', ports: [] })).toMatch(/at least one port/);
    expect(problems(42)).toMatch(/expected a host .* or \{host, ports\}/);
    for (const entry of ['https://example.com', { host: 'bad host' }, 42]) expect(problems(entry)).not.toMatch(/Invalid input/);
  });

  it('reserves the names of the API\'s bundles-as-code routes', () => {
    for (const name of ['apply', 'export', 'Export']) expect(() => validateBundles([{ name }], 'test')).toThrow(/is reserved/);
    expect(validateBundles([{ name: 'exporter' }], 'test')).toHaveLength(1);
  });
});
