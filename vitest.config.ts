import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real SQLite files and an in-process DynamoDB server: give slow CI machines room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // DynamoDB target locks go to a temp directory per test, never to ~/.datafix/locks.
    setupFiles: ['test/helpers/lock-dir.ts'],
    // The SDK's Node-version notice is noise in test output; the CLI silences it the same way.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
