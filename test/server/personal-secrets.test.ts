import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectivePolicy } from '../../src/access/effective-policy.js';
import { personalSecretName } from '../../src/access/personal-secrets.js';
import { decide } from '../../src/policy/decide.js';
import { BACKENDS } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * Attack: an org bundle names a member's personal secret by its derived vault
 * name and sends it wherever the bundle allows; or an admin overwrites or
 * deletes it through the secrets API or `tagbox secret`. Every entry point
 * refuses, and the member's connector keeps its own, unchanged secret.
 */
describe.each(BACKENDS)('personal secrets stay personal (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let bob: { token: string; memberId: string };
  let secret: string;
  const steal = (secretName: string) => ({
    connections: [{ name: 'exfil', secret: secretName, allowedWebsites: ['evil.example'], inject: { header: 'X-Loot', value: '{{secret}}' } }],
  });
  const bobsSecretVersion = async () => (await h.api(bob.token, 'GET', '/api/v1/me/connectors/gh')).body.secret?.version as number | undefined;

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'mallory');
    bob = await h.tokenFor('member', 'bob');
    const put = await h.api(bob.token, 'PUT', '/api/v1/me/connectors/gh', { allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'token {{secret}}' }, secretValue: 'bob-value' });
    expect(put.status).toBe(200);
    secret = personalSecretName(bob.memberId, 'gh');
  });
  afterAll(async () => h?.close());

  it('the bundles API refuses a bundle naming a personal secret, naming the field (admins and the owner alike)', async () => {
    for (const token of [admin.token, h.ownerToken]) {
      for (const name of [secret, 'personal.0123456789abcdef.future']) {
        const res = await h.api(token, 'PUT', '/api/v1/bundles/exfil', steal(name));
        expect(res.status).toBe(400);
        expect(res.body.error.message).toContain('body.connections[0].secret');
        expect(res.body.error.message).toContain('personal.');
      }
    }
    expect((await h.api(admin.token, 'GET', '/api/v1/bundles/exfil')).status).toBe(404);
    // Bundles without one are still accepted: the service keeps serving.
    expect((await h.api(admin.token, 'PUT', '/api/v1/bundles/fine', steal('org-token'))).status).toBe(200);
  });

  it('the secrets API cannot create, overwrite or delete a personal secret', async () => {
    expect(await bobsSecretVersion()).toBe(1);
    for (const token of [admin.token, h.ownerToken]) {
      for (const path of [`/api/v1/secrets/${secret}`, `/api/v1/secrets/${secret.replace('personal.', 'personal%2E')}`, '/api/v1/secrets/personal.0123456789abcdef.planted']) {
        const put = await h.api(token, 'PUT', path, { value: 'attacker-value' });
        expect([path, put.status]).toEqual([path, 403]);
        expect((await h.api(token, 'DELETE', path)).status).toBe(403);
      }
    }
    expect(await bobsSecretVersion()).toBe(1);
    expect((await h.api(admin.token, 'GET', '/api/v1/secrets')).body.map((s: { name: string }) => s.name)).not.toContain(secret);
  });

  it('`tagbox secret set` and `rm` refuse the personal namespace (exit 2), and the secret is unchanged', async () => {
    const set = await runTagbox(['secret', 'set', secret], { env: h.backend.env, input: 'attacker-value\n' });
    expect(set.code).toBe(2);
    expect(set.stderr).toContain('personal.');
    const rm = await runTagbox(['secret', 'rm', secret], { env: h.backend.env });
    expect(rm.code).toBe(2);
    expect(await bobsSecretVersion()).toBe(1);
    // An org secret still goes in.
    const org = await runTagbox(['secret', 'set', 'org-token'], { env: h.backend.env, input: 'v\n' });
    expect([org.code, org.stderr]).toEqual([0, '']);
  });

  it('`tagbox bundle apply` and `tagbox exec --bundles` refuse a file naming a personal secret, naming the line and field', async () => {
    const file = join(h.backend.home, 'exfil.yaml');
    writeFileSync(
      file,
      `bundles:\n  - name: exfil\n    connections:\n      - name: loot\n        secret: ${secret}\n        allowedWebsites: [evil.example]\n        inject: { header: X-Loot, value: "{{secret}}" }\n`,
    );
    const apply = await runTagbox(['bundle', 'apply', file], { env: h.backend.env });
    expect(apply.code).toBe(2);
    expect(apply.stderr).toContain(`${file}:5: bundle "exfil", connection "loot": bundles[0].connections[0].secret:`);
    expect((await h.api(admin.token, 'GET', '/api/v1/bundles/exfil')).status).toBe(404);
    const exec = await runTagbox(['exec', '--bundles', file, '--', 'true'], { env: h.backend.env });
    expect(exec.code).toBe(2);
    expect(exec.stderr).toContain('bundles[0].connections[0].secret');
  });

  it('Bob’s DM still uses his own secret after every refused attempt', async () => {
    const dm = await effectivePolicy(h.store.db, { kind: 'dm', memberId: bob.memberId });
    const d = decide(dm, { method: 'GET', scheme: 'https', host: 'api.github.com', port: 443, path: '/' });
    expect(d).toMatchObject({ outcome: 'credential' });
    expect(JSON.stringify(d)).toContain(secret);
  });
});
