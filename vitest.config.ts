import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // In CI, one line per test: the log shows every suite running on SQLite and on Postgres.
    reporters: process.env.CI ? ['verbose'] : ['default'],
  },
});
