import { defineConfig } from 'vitest/config';

/** DATAFIX_TEST_TIME_SCALE stretches every timeout on a slow machine (see test/helpers/cli.ts). */
const scale = Math.max(1, Number(process.env.DATAFIX_TEST_TIME_SCALE) || 1);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real SQLite files and an in-process DynamoDB server: give slow CI machines room.
    testTimeout: 60_000 * scale,
    hookTimeout: 60_000 * scale,
    pool: 'forks',
    // DynamoDB target locks go to a temp directory per test, never to ~/.datafix/locks.
    setupFiles: ['test/helpers/lock-dir.ts'],
    // The SDK's Node-version notice is noise in test output; the CLI silences it the same way.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
