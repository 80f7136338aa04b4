/**
 * Runs around every test file (a vitest setup file): the file must leave nothing in the
 * repository's own `.datafix/` (runs belong in temp directories), and neither the test process nor
 * a CLI it started may print a MaxListenersExceededWarning (a listener leak, on an AbortSignal or
 * any emitter). A failure names the files left or the warning.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, expect } from 'vitest';
import { REPO_ROOT } from './cli.js';
import { leakWarnings } from './warnings.js';

const STATE = join(REPO_ROOT, '.datafix');

/** Every file under `dir`, relative to the repository; empty when there is no such directory. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)))
      .sort();
  } catch {
    return [];
  }
}

const before = filesUnder(STATE);

process.on('warning', (w) => {
  if (w.name === 'MaxListenersExceededWarning') leakWarnings.push(`test process: ${w.message}`);
});

afterAll(async () => {
  // A warning is emitted on a later tick than the code that causes it.
  await new Promise((resolve) => setImmediate(resolve));
  // One comparison, so that a failure shows both: files left (run the CLI in a temp dir) and leaks.
  expect({ leftInRepositoryDatafix: filesUnder(STATE), maxListenersWarnings: leakWarnings }).toEqual({
    leftInRepositoryDatafix: before,
    maxListenersWarnings: [],
  });
});
