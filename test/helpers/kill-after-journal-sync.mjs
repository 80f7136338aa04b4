/**
 * Preloaded into a CLI process (`NODE_OPTIONS=--import=…`): the process SIGKILLs itself right after
 * the DATAFIX_TEST_JOURNAL_KILL_AFTER_SYNC-th fsync at the journal's file-system seam (`journalFs`)
 * returns. When that fsync made a batch's line durable, the kill lands between the journal and the
 * batch's commit: the journal holds writes that SQLite then rolls back.
 */
const { journalFs } = await import(new URL('../../dist/safety/journal.js', import.meta.url).href);
const killAfter = Number(process.env.DATAFIX_TEST_JOURNAL_KILL_AFTER_SYNC);
const { fsyncSync } = journalFs;
let syncs = 0;
journalFs.fsyncSync = (fd) => {
  fsyncSync(fd);
  if (++syncs === killAfter) process.kill(process.pid, 'SIGKILL');
};
