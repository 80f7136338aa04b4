import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests Stryker runs against each mutant: only those that run datafix's source in the test
 * process. Tests that spawn the CLI run the build in dist/, which Stryker does not mutate, so
 * they could never kill a mutant and would only slow each one down.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      exclude: [
        'test/cli/**',
        'test/reliability/crash-points.test.ts',
        'test/reliability/dynamo-faults.test.ts',
        'test/reliability/dynamo-data-secrets.test.ts',
        'test/reliability/hostile-specs.test.ts',
        'test/reliability/sqlite-data-supply.test.ts',
        'test/safety/confirm.test.ts',
        'test/safety/journal-undo.test.ts',
        'test/safety/lock.test.ts',
        'test/safety/resume.test.ts',
        'test/safety/saved-plan.test.ts',
      ],
    },
  }),
);
