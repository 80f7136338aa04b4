/**
 * A stand-in for an application using the database while a fix runs: a one-row write
 * transaction (BEGIN IMMEDIATE) every argv[5] ms (default 20) for argv[3] ms on the SQLite file
 * argv[2], with a busy timeout of argv[4] ms, as better-sqlite3 applications set one. Prints one
 * JSON line: { writes, failures, maxWaitMs }.
 */
import Database from 'better-sqlite3';

const [path, forMs, busyMs, everyMs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] ?? 20)];
// Opened and prepared with time to wait (reading the schema needs the database unlocked too),
// then given its own busy timeout for the writes.
const db = new Database(path, { timeout: 5000 });
const write = db.prepare('UPDATE app_log SET hits = hits + 1, at = ? WHERE id = 1');
const once = db.transaction((at) => write.run(at));
db.pragma(`busy_timeout = ${busyMs}`);
const nap = new Int32Array(new SharedArrayBuffer(4));
let writes = 0;
let failures = 0;
let maxWaitMs = 0;
for (const end = Date.now() + forMs; Date.now() < end; ) {
  const t = performance.now();
  try {
    once.immediate(new Date().toISOString());
    writes++;
  } catch {
    failures++;
  }
  maxWaitMs = Math.max(maxWaitMs, performance.now() - t);
  Atomics.wait(nap, 0, 0, everyMs);
}
db.close();
process.stdout.write(`${JSON.stringify({ writes, failures, maxWaitMs: Math.round(maxWaitMs) })}\n`);
