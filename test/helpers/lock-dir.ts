/**
 * Every test gets a DynamoDB lock directory of its own (`DATAFIX_LOCK_DIR`, inherited by the CLI
 * processes it starts), so locks stay out of the home directory and a lock a test leaves behind
 * (a killed run) never meets another test's run. Removed after the test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach } from 'vitest';

const fresh = () => mkdtempSync(join(tmpdir(), 'datafix-locks-'));
const made: string[] = [];
const use = () => {
  const dir = fresh();
  made.push(dir);
  process.env.DATAFIX_LOCK_DIR = dir;
};

// For the CLI runs made in `beforeAll` hooks.
use();
beforeEach(use);
afterEach(() => {
  // The file-level directory stays for `afterAll` hooks; later ones go with their test.
  for (const dir of made.splice(1)) rmSync(dir, { recursive: true, force: true });
  process.env.DATAFIX_LOCK_DIR = made[0];
});
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
