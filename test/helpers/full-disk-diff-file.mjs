/**
 * Preloaded into a CLI process (`NODE_OPTIONS=--import=…`): the disk fills under `--diff-file`.
 * The first DATAFIX_TEST_DIFF_WRITES writes of its lines (default 1) land; every later one fails
 * with ENOSPC, at the diff file's file-system seam (`diffFileFs`), as a full disk fails it.
 */
import { writeSync } from 'node:fs';

const { diffFileFs } = await import(new URL('../../dist/cli/diff-file.js', import.meta.url).href);
const landing = Number(process.env.DATAFIX_TEST_DIFF_WRITES ?? '1');
let writes = 0;
// With DATAFIX_TEST_DIFF_TORN set, the first failing write lands its first half before the disk
// fills, as a real full disk tears the last line.
const torn = process.env.DATAFIX_TEST_DIFF_TORN === '1';
diffFileFs.writeSync = (...args) => {
  writes++;
  if (writes > landing) {
    if (torn && writes === landing + 1) {
      const [fd, buffer] = args;
      writeSync(fd, buffer, 0, Math.floor(buffer.length / 2));
    }
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }
  return writeSync(...args);
};
