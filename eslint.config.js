import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const VAULT_PRIVATE = {
  group: ['**/vault/private', '**/vault/private/**'],
  message: 'Only the proxy opens secrets: import the Sealer (src/vault/sealer.js) instead. See docs/VAULT.md.',
};
const VAULT_MASTER_KEY = {
  group: ['**/vault/master-key*', '**/vault/bootstrap*', '**/vault/rotate-master*'],
  message: 'The control plane never loads the vault master key. See docs/VAULT.md.',
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'web/dist/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Invariant 4: only the proxy can open a secret. The vault's opening side
  // (src/vault/private/**) is importable from src/vault and src/proxy only; the
  // master key loader only from those and the two CLI verbs that manage keys.
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.js', '**/*.mjs'],
    ignores: ['src/vault/**', 'src/proxy/**', 'test/**', 'bench/**', 'src/cli/secret.ts', 'src/cli/vault.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [VAULT_PRIVATE, VAULT_MASTER_KEY] }] },
  },
  {
    files: ['src/cli/secret.ts', 'src/cli/vault.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [VAULT_PRIVATE] }] },
  },
);
