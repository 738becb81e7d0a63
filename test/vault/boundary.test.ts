import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * Invariant 4 as a build rule: code outside src/vault and src/proxy cannot
 * import the opening side of the vault, and the control plane cannot load the
 * master key. `npm run lint` (and CI) fail on such an import.
 */
const OPENER = "import { Opener } from '../vault/private/opener.js';\nexport const x = Opener;\n";
const RESOLVER = "import { createCredentialResolver } from '../../vault/private/resolver.js';\nexport const x = createCredentialResolver;\n";
const MASTER = "import { loadMasterKey } from '../vault/master-key.js';\nexport const x = loadMasterKey;\n";
const SEALER = "import { Sealer } from '../vault/sealer.js';\nexport const x = Sealer;\n";

async function lint(code: string, filePath: string): Promise<string[]> {
  const [result] = await new ESLint({ cwd: REPO_ROOT }).lintText(code, { filePath: `${REPO_ROOT}${filePath}` });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('vault import boundary', () => {
  it.each(['src/server/admin.ts', 'src/sessions/run.ts', 'src/cli/exec.ts', 'src/access/bundles.ts'])('%s cannot import the Opener or the master key', async (file) => {
    expect(await lint(OPENER, file)).toEqual([expect.stringMatching(/Only the proxy opens secrets/)]);
    expect(await lint(MASTER, file)).toEqual([expect.stringMatching(/never loads the vault master key/)]);
    expect(await lint(SEALER, file)).toEqual([]);
  });

  it('nested paths are caught too', async () => {
    expect(await lint(RESOLVER, 'src/server/api/secrets.ts')).toHaveLength(1);
  });

  it('the key-management verbs may load the master key but not open secrets', async () => {
    expect(await lint(MASTER, 'src/cli/vault.ts')).toEqual([]);
    expect(await lint(OPENER, 'src/cli/secret.ts')).toHaveLength(1);
  });

  it('the proxy and the vault itself may open', async () => {
    expect(await lint(OPENER, 'src/proxy/server.ts')).toEqual([]);
    expect(await lint(MASTER, 'src/proxy/server.ts')).toEqual([]);
  });
});
