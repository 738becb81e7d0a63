import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { listOrgs } from '../../src/access/orgs-repo.js';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';

const FILE_A = `
bundles:
  - name: platform-eng
    domains:
      - registry.npmjs.org
      - "*.githubusercontent.com"
      - host: internal.example.com
        ports: [443, 8443]
    connections:
      - name: github
        secret: gh-token
        allowedWebsites: [api.github.com, github.com]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
        narrow:
          host: api.github.com
          pathPrefix: /repos/acme/
          readOnly: true
  - name: docs
    domains: [docs.example.com]
  - name: old
    domains: [old.example.com]
`;

const FILE_B = `
bundles:
  - name: platform-eng
    domains:
      - "*.githubusercontent.com"
      - registry.npmjs.org
      - host: internal.example.com
        ports: [8443, 443]
    connections:
      - name: github
        secret: gh-token-2
        allowedWebsites: [api.github.com, github.com]
        inject: { basic: { username: x-access-token } }
  - name: docs
    domains: [docs.example.com, help.example.com]
  - name: new
    domains: [new.example.com]
`;

describe.each(BACKENDS)('tagbox bundle on %s', (backendName) => {
  let backend: TestBackend;
  const tagbox = (...args: string[]) => runTagbox(['bundle', ...args], { env: backend.env });
  const file = (name: string, text: string) => {
    const path = join(backend.home, name);
    writeFileSync(path, text);
    return path;
  };

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
  });
  afterEach(async () => backend.cleanup());

  it('apply is declarative and idempotent; --dry-run prints the diff and changes nothing; --prune deletes', async () => {
    const a = file('a.yaml', FILE_A);
    const dry = await tagbox('apply', a, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe('+ bundle platform-eng\n+ bundle docs\n+ bundle old\ndry run: 3 change(s) not applied\n');
    expect((await tagbox('export')).stdout).toBe('bundles: []\n');

    expect((await tagbox('apply', a)).stdout).toBe('+ bundle platform-eng\n+ bundle docs\n+ bundle old\napplied 3 change(s)\n');
    expect((await tagbox('apply', a)).stdout).toBe('no changes\n');

    const b = file('b.yaml', FILE_B);
    expect((await tagbox('apply', b, '--dry-run')).stdout).toBe(
      '~ bundle platform-eng (connections)\n~ bundle docs (domains)\n+ bundle new\ndry run: 3 change(s) not applied\n',
    );
    expect((await tagbox('apply', b, '--dry-run', '--prune')).stdout).toBe(
      '~ bundle platform-eng (connections)\n~ bundle docs (domains)\n+ bundle new\n- bundle old\ndry run: 4 change(s) not applied\n',
    );
    expect((await tagbox('apply', b, '--prune')).code).toBe(0);
    expect((await tagbox('apply', b, '--prune')).stdout).toBe('no changes\n');
    const exported = (await tagbox('export')).stdout;
    expect(exported).not.toContain('old.example.com');
    expect(exported).toContain('secret: gh-token-2');
  });

  it('export round-trips through apply with no changes', async () => {
    await tagbox('apply', file('a.yaml', FILE_A));
    const exported = await tagbox('export');
    expect(exported.code).toBe(0);
    const again = await tagbox('apply', file('exported.yaml', exported.stdout), '--prune');
    expect(again.stdout).toBe('no changes\n');
    expect((await tagbox('export')).stdout).toBe(exported.stdout);
  });

  it('an invalid file is exit 2 naming the line and field, and nothing is stored', async () => {
    const bad = file('bad.yaml', FILE_A.replace('header: Authorization', 'header: Host'));
    const r = await tagbox('apply', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+: .*inject\.header/);
    expect((await tagbox('export')).stdout).toBe('bundles: []\n');
    const inline = await tagbox('apply', file('inline.yaml', FILE_A.replace('secret: gh-token', 'secret: gh-token\n        value: ghp_123')));
    expect(inline.code).toBe(2);
  });

  it('attach and detach by name or id; unknown names are exit 2; every change is audited as cli:$USER', async () => {
    await tagbox('apply', file('a.yaml', FILE_A));
    const store = await openControlStore(backend.location);
    try {
      const admin = new AccessAdmin(store, new AuditLog(store));
      const org = await admin.ensureDefaultOrg();
      const ws = await admin.createWorkspace('t', { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'acme' });
      const ch = await admin.createChannel('t', { workspaceId: ws.id, externalId: 'C1', name: 'eng' });

      expect((await tagbox('attach', 'docs', '--org')).stdout).toBe('attached bundle docs to the org\n');
      expect((await tagbox('attach', 'docs', '--org')).stdout).toBe('no changes: bundle docs is already attached to the org\n');
      expect((await tagbox('attach', 'docs', '--workspace', 'acme')).stdout).toBe('attached bundle docs to workspace acme\n');
      expect((await tagbox('attach', 'platform-eng', '--channel', '#eng')).stdout).toBe('attached bundle platform-eng to channel eng\n');
      expect((await tagbox('attach', 'old', '--workspace', ws.id, '--channel', ch.id)).code).toBe(0);
      expect(await admin.bundleScopes(org.id, 'docs')).toEqual(['org', `workspace:${ws.id}`]);
      expect(await admin.bundleScopes(org.id, 'platform-eng')).toEqual([`channel:${ch.id}`]);

      expect((await tagbox('detach', 'docs', '--workspace', ws.id)).stdout).toBe('detached bundle docs from workspace acme\n');
      expect((await tagbox('detach', 'docs', '--workspace', ws.id)).stdout).toBe('no changes: bundle docs is not attached to workspace acme\n');

      const unknownChannel = await tagbox('attach', 'docs', '--channel', 'nope');
      expect([unknownChannel.code, unknownChannel.stderr]).toEqual([2, 'tagbox: --channel "nope": no such channel (give an id or a name)\n']);
      const unknownWs = await tagbox('detach', 'docs', '--workspace', 'nowhere');
      expect([unknownWs.code, unknownWs.stderr]).toEqual([2, 'tagbox: --workspace "nowhere": no such workspace (give an id or a name)\n']);
      const unknownBundle = await tagbox('attach', 'ghost', '--org');
      expect([unknownBundle.code, unknownBundle.stderr]).toEqual([2, 'tagbox: bundle "ghost" not found\n']);
      expect((await tagbox('attach', 'docs')).code).toBe(2);
      expect((await tagbox('attach', 'docs', '--org', '--workspace', 'acme')).code).toBe(2);

      const events = [];
      for await (const e of new AuditLog(store).query({ type: 'admin-change' })) if (String(e.actor).startsWith('cli')) events.push(e);
      expect(events.map((e) => `${e.action} ${e.target} ${(e.scope as string | undefined) ?? ''}`.trim())).toEqual([
        'create bundle:platform-eng',
        'create bundle:docs',
        'create bundle:old',
        'attach bundle:docs org',
        `attach bundle:docs workspace:${ws.id}`,
        `attach bundle:platform-eng channel:${ch.id}`,
        `attach bundle:old channel:${ch.id}`,
        `detach bundle:docs workspace:${ws.id}`,
      ]);
      expect(JSON.stringify(events)).not.toContain('Bearer');
    } finally {
      await store.close();
    }
  });

  it('several processes starting at once create exactly one org', async () => {
    const runs = await Promise.all([1, 2, 3, 4].map(() => tagbox('export')));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    const store = await openControlStore(backend.location);
    try {
      expect(await listOrgs(store.db)).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
