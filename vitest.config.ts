import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration files each start a lab of sshd processes; two at a time fit two cores.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
