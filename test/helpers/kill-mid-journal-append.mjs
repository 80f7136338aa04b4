/**
 * Preloaded into a CLI process (`NODE_OPTIONS=--import=…`): the process is killed in the middle of
 * a journal append, as a power cut or `kill -9` during the write would leave it. The write at the
 * journal's file-system seam (`journalFs`) that DATAFIX_TEST_JOURNAL_KILL_AT names (`KIND:N`, the
 * N-th line of that type: `writes:2` is the second batch's) puts the first half of its bytes on
 * disk, then the process SIGKILLs itself: the journal really ends in a torn line, and nothing
 * after it (the batch, its outcomes) happens.
 */
import { fsyncSync, writeSync } from 'node:fs';

const { journalFs } = await import(new URL('../../dist/safety/journal.js', import.meta.url).href);
const [kind, nth] = String(process.env.DATAFIX_TEST_JOURNAL_KILL_AT).split(':');
let seen = 0;
journalFs.writeSync = (fd, buffer, offset, length, position) => {
  const line = Buffer.from(buffer.buffer, buffer.byteOffset + offset, length).toString('utf8');
  if (line.startsWith(`{"type":"${kind}"`) && ++seen === Number(nth)) {
    writeSync(fd, buffer, offset, Math.floor(length / 2), position);
    fsyncSync(fd);
    process.kill(process.pid, 'SIGKILL');
  }
  return writeSync(fd, buffer, offset, length, position);
};
