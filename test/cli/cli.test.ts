import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTagbox } from '../helpers/cli.js';
import { POSTGRES_URL } from '../helpers/backends.js';

const homes: string[] = [];
function freshHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tagbox-cli-'));
  homes.push(dir);
  return join(dir, 'home');
}
afterAll(() => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

describe('tagbox command', () => {
  it('lists its verbs in --help and exits 0', async () => {
    const r = await runTagbox(['--help']);
    expect(r.code).toBe(0);
    for (const verb of ['version', 'doctor', 'migrate', 'audit']) expect(r.stdout).toMatch(new RegExp(`^  ${verb}\\b`, 'm'));
  });

  it('prints its version', async () => {
    const r = await runTagbox(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tagbox \d+\.\d+\.\d+ \(node 2\d\./);
  });

  it('exits 2 on bad usage', async () => {
    const unknown = await runTagbox(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badChoice = await runTagbox(['audit', 'export', '--type', 'nonsense'], { env: { TAGBOX_HOME: freshHome() } });
    expect(badChoice.code).toBe(2);
  });

  it('creates TAGBOX_HOME with mode 0700 on first use', async () => {
    const home = freshHome();
    const r = await runTagbox(['migrate'], { env: { TAGBOX_HOME: home } });
    expect(r.code).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    // --home wins over TAGBOX_HOME.
    const other = freshHome();
    expect((await runTagbox(['--home', other, 'migrate'], { env: { TAGBOX_HOME: home } })).code).toBe(0);
    expect(statSync(join(other, 'tagbox.db')).isFile()).toBe(true);
  });

  it('exits 2 naming the file and key when the config is invalid', async () => {
    const home = freshHome();
    mkdirSync(home, { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'tagbox.yaml'), 'upstream:\n  caFile: 42\n');
    for (const verb of [['doctor'], ['migrate']]) {
      const r = await runTagbox(verb, { env: { TAGBOX_HOME: home } });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${join(home, 'tagbox.yaml')}:2: upstream.caFile:`);
    }
  });

  describe('doctor', () => {
    it('reports every check and exits 0 when all required parts are present', async () => {
      const home = freshHome();
      // Started as root, `tagbox up` runs its server and proxy as system users: they must reach the home.
      mkdirSync(home, { recursive: true, mode: 0o700 });
      chmodSync(dirname(home), 0o755);
      expect((await runTagbox(['migrate'], { env: { TAGBOX_HOME: home } })).code).toBe(0);
      const r = await runTagbox(['doctor'], { env: { TAGBOX_HOME: home } });
      expect(r.stdout).toMatch(/^ok +node: v/m);
      expect(r.stdout).toMatch(/^ok +bubblewrap: /m);
      expect(r.stdout).toMatch(/^ok +relay: the relay and the seccomp profiles are built \(.*native\/build\)$/m);
      expect(r.stdout).toMatch(/^ok +seccomp: loaded: /m);
      expect(r.stdout).toMatch(/^ok +\/proc\/sys: read-only inside sandboxes/m);
      expect(r.stdout).toMatch(/^(ok|warn) +sandbox user: /m);
      expect(r.stdout).toMatch(/^ok +user namespaces: /m);
      expect(r.stdout).toMatch(/ resource limits: (cgroup v2|cgroup v1|rlimits only)/m);
      expect(r.stdout).toMatch(/^ok +TAGBOX_HOME: .*mode 0700/m);
      expect(r.stdout).toMatch(/^ok +database: .*migrated/m);
      expect(r.stdout).toMatch(process.getuid!() === 0 ? /^ok +privilege separation: on: /m : /^warn +privilege separation: off, single-user mode \(weaker\)/m);
      expect(r.code).toBe(0);
    });

    it('tells the truth when bubblewrap is missing, with the fix', async () => {
      // A PATH with no bwrap.
      const bin = mkdtempSync(join(tmpdir(), 'tagbox-path-'));
      homes.push(bin);
      const home = freshHome();
      await runTagbox(['migrate'], { env: { TAGBOX_HOME: home } });
      const r = await runTagbox(['doctor'], { env: { TAGBOX_HOME: home, PATH: bin } });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^MISSING bubblewrap: bwrap not found on PATH — fix: apt-get install bubblewrap$/m);
      expect(r.stdout).toMatch(/^MISSING user namespaces: .*fix: apt-get install bubblewrap/m);
    });

    it('reports pending migrations and a loose TAGBOX_HOME mode', async () => {
      const home = freshHome();
      mkdirSync(home, { mode: 0o755 });
      const r = await runTagbox(['doctor'], { env: { TAGBOX_HOME: home } });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^MISSING TAGBOX_HOME: .* has mode 0755, expected 0700 — fix: chmod 700 /m);
      expect(r.stdout).toMatch(/^MISSING database: .*migration\(s\) pending — fix: tagbox migrate$/m);
    });

    it('reports an unreachable Postgres', async () => {
      const r = await runTagbox(['doctor'], { env: { TAGBOX_HOME: freshHome(), TAGBOX_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^MISSING database: cannot reach Postgres at postgres:\/\/nobody@127\.0\.0\.1:1\/none/m);
    });

    it('checks the Postgres store when TAGBOX_DATABASE_URL is set', async () => {
      const schema = `t_cli_${Date.now().toString(36)}`;
      const env = { TAGBOX_HOME: freshHome(), TAGBOX_DATABASE_URL: POSTGRES_URL, TAGBOX_DATABASE_SCHEMA: schema };
      try {
        expect((await runTagbox(['migrate'], { env })).code).toBe(0);
        const r = await runTagbox(['doctor'], { env });
        expect(r.stdout).toMatch(new RegExp(`^ok +database: postgres://.*schema ${schema}\\) \\(reachable, migrated\\)`, 'm'));
      } finally {
        const pg = (await import('pg')).default;
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`drop schema if exists "${schema}" cascade`);
        await client.end();
      }
    });
  });
});
