// Mutation testing of the code that carries datafix's safety promises: `npm run mutate`.
// Not part of `npm test` or CI: a whole-scope run takes hours on a 2-core machine (docs/testing.md).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  // Each mutant runs only the tests that executed its code in the first, unmutated run.
  coverageAnalysis: 'perTest',
  mutate: [
    'src/engine/run.ts',
    'src/plan/values.ts',
    'src/safety/journal.ts',
    'src/safety/undo.ts',
    'src/safety/session.ts',
    'src/safety/state.ts',
    'src/safety/saved-plan.ts',
    'src/safety/lock.ts',
    'src/safety/jsonl.ts',
    'src/adapters/sqlite/index.ts',
    'src/adapters/sqlite/sql.ts',
    'src/adapters/dynamodb/write.ts',
    'src/adapters/dynamodb/failures.ts',
  ],
  // The machine is shared and small; the tests start real SQLite files and dynalite servers.
  concurrency: 1,
  timeoutMS: 60_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  ignorePatterns: ['reports', '.datafix', 'bench/results'],
};
