import { defineConfig } from 'vitest/config';

import { TIME_SCALE as scale } from './test/helpers/time-scale.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real SQLite files and an in-process DynamoDB server: give slow CI machines room.
    testTimeout: 60_000 * scale,
    hookTimeout: 60_000 * scale,
    pool: 'forks',
    // Most test time is spent waiting on CLI child processes and on the in-process DynamoDB
    // server, not on the worker's own CPU: three files at a time keep two cores busy (vitest's
    // default on two cores is one).
    maxWorkers: 3,
    // DynamoDB target locks go to a temp directory per test, never to ~/.datafix/locks; every test
    // file must leave the repository's .datafix/ as it was and print no listener-leak warning.
    setupFiles: ['test/helpers/lock-dir.ts', 'test/helpers/clean-run.ts'],
    // The SDK's Node-version notice is noise in test output; the CLI silences it the same way.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
