/**
 * Preloaded into a CLI process (`NODE_OPTIONS=--import=…`): the process is killed in the middle of
 * a journal append, as a power cut or `kill -9` during the write would leave it. The
 * DATAFIX_TEST_JOURNAL_KILL_AT-th write at the journal's file-system seam (`journalFs`) puts the
 * first half of its bytes on disk, then the process SIGKILLs itself: the journal really ends in a
 * torn line, and nothing after it (the batch, its outcomes) happens.
 */
import { fsyncSync, writeSync } from 'node:fs';

const { journalFs } = await import(new URL('../../dist/safety/journal.js', import.meta.url).href);
const killAt = Number(process.env.DATAFIX_TEST_JOURNAL_KILL_AT);
let writes = 0;
journalFs.writeSync = (fd, buffer, offset, length, position) => {
  if (++writes === killAt) {
    writeSync(fd, buffer, offset, Math.floor(length / 2), position);
    fsyncSync(fd);
    process.kill(process.pid, 'SIGKILL');
  }
  return writeSync(fd, buffer, offset, length, position);
};
