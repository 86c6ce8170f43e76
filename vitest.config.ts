import { defineConfig } from 'vitest/config';

/** Tests spawn real processes (git, python, the CLI) and share two cores, so allow generous timeouts. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
