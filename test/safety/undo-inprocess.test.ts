/**
 * `undoJournal` in the test process, on journals written by live runs through the library: what
 * undo restores, leaves alone and reports for every state a record can be in afterwards (as the
 * run left it, changed since, deleted, already as before, never written, written without its
 * outcome recorded), and how it ends when stopped (Ctrl-C between batches, a locked database).
 * Each test checks the database afterwards against rows written here, and the summary's counts.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { DatafixError } from '../../src/errors.js';
import { journalFs } from '../../src/safety/journal.js';
import { TargetLock } from '../../src/safety/lock.js';
import { type UndoEvent, type UndoOptions, undoJournal } from '../../src/safety/undo.js';
import { changeItem, createNumericSortKeyTable, rawClient, seedItems } from '../helpers/dynalite.js';
import { startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query } from '../sqlite/fixtures.js';
import {
  cancelledOrders,
  createOrdersDb,
  dynamoFix,
  type LibraryFix,
  libraryFix,
  liveRun,
  rejectionOf,
  renameSpec,
  stopAfterPages,
  takeLockOver,
  useDynaliteTables,
} from './library-runs.js';
import { dumpSqlite, scanRaw, sqliteAll, sqliteExec } from './support.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.restoreAllMocks();
});

const ORDERS = 5;
const ALL_RENAMED = Array(ORDERS).fill('cancelled');
const NONE_RENAMED = Array(ORDERS).fill('canceled');

/** A fresh `orders` database of five `canceled` orders, and the rename fix on it, two orders a page. */
function fresh(busyTimeoutMs?: number): LibraryFix {
  const dir = tmp();
  const db = dir.file('orders.db');
  createOrdersDb(db, cancelledOrders(ORDERS));
  return libraryFix(dir, db, renameSpec(2, busyTimeoutMs));
}

/** Events in key order (within a batch, undo reports restores after the records it left alone). */
const byId = (a: UndoEvent, b: UndoEvent) => Number(a.key.id) - Number(b.key.id);
const orderRows = (db: string) => sqliteAll(db, 'SELECT id, status FROM orders ORDER BY id');

const statuses = (db: string) => sqliteAll<{ status: string }>(db, 'SELECT status FROM orders ORDER BY id').map((r) => r.status);

/** The rows of the checkpoint table runs keep in the database, or undefined when it is not there. */
function checkpointRows(db: string): number | undefined {
  const tables = sqliteAll<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE name = '_datafix_checkpoints'");
  if (tables.length === 0) return undefined;
  return sqliteAll<{ n: number }>(db, 'SELECT count(*) AS n FROM _datafix_checkpoints')[0]?.n;
}

/**
 * Runs `fn` with a second connection to `db` (another application) that `lock()` makes take the
 * database's write lock; the lock is released and the connection closed afterwards.
 */
async function withOtherWriter<T>(db: string, fn: (lock: () => void) => Promise<T>): Promise<T> {
  const other = new Database(db);
  try {
    return await fn(() => other.exec('BEGIN IMMEDIATE'));
  } finally {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
  }
}

/** How many files this process holds open at `path` (a connection left open holds its database). */
function openHandlesTo(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

/** A live run that finishes, and its journal. */
async function runToEnd(fix: LibraryFix): Promise<string> {
  const result = await liveRun(fix);
  expect(result.summary).toMatchObject({ total: ORDERS, updated: ORDERS, failed: 0 });
  return result.journal as string;
}

/** Undo with every event and note collected. */
async function undoCollecting(journal: string, options: Partial<UndoOptions> = {}) {
  const events: UndoEvent[] = [];
  const notes: string[] = [];
  const targets: string[] = [];
  const summary = await undoJournal(journal, {
    dryRun: false,
    onEvent: (e) => {
      events.push(e);
    },
    onNote: (t) => notes.push(t),
    onTarget: (t) => targets.push(t),
    ...options,
  });
  return { summary, events, notes, targets };
}

const zero = { notWritten: 0, restored: 0, unchanged: 0, conflicts: 0, failed: 0 };

describe('undo of updates on SQLite', () => {
  it('restores every record the run changed, newest first, and the database is as before the run', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    const journal = await runToEnd(fix);
    expect(statuses(fix.db)).toEqual(ALL_RENAMED);

    const { summary, events, notes, targets } = await undoCollecting(journal);
    expect(summary).toEqual({
      journal,
      fix: 'rename-status',
      dryRun: false,
      total: ORDERS,
      ...zero,
      restored: ORDERS,
      durationMs: summary.durationMs,
    });
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(summary.durationMs).toBeLessThan(60_000);
    expect(events).toEqual([5, 4, 3, 2, 1].map((id) => ({ outcome: 'restored', table: 'orders', key: { id } })));
    expect(targets).toEqual([`sqlite ${fix.db}`]);
    expect(notes).toEqual([]);
    expect(dumpSqlite(fix.db)).toEqual(before);
    // The database is closed again: a library caller undoing many journals holds no connections.
    expect(openHandlesTo(fix.db)).toBe(0);
  });

  it('a dry run restores nothing and counts what it would restore', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const afterRun = dumpSqlite(fix.db);
    const { summary, events } = await undoCollecting(journal, { dryRun: true });
    expect(summary).toMatchObject({ dryRun: true, total: ORDERS, ...zero, restored: ORDERS });
    expect(events.map((e) => e.outcome)).toEqual(Array(ORDERS).fill('restored'));
    expect(dumpSqlite(fix.db)).toEqual(afterRun);
  });

  it('a record changed (to another value or NULL) or deleted since the run is a conflict and left alone; one already as before is unchanged', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    sqliteExec(fix.db, "UPDATE orders SET status = 'shipped' WHERE id = 1");
    sqliteExec(fix.db, 'DELETE FROM orders WHERE id = 2');
    sqliteExec(fix.db, "UPDATE orders SET status = 'canceled' WHERE id = 3");
    sqliteExec(fix.db, 'UPDATE orders SET status = NULL WHERE id = 4');

    const { summary, events } = await undoCollecting(journal);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: 1, unchanged: 1, conflicts: 3 });
    expect(events.sort(byId)).toEqual([
      { outcome: 'conflict', table: 'orders', key: { id: 1 }, message: 'changed since the run' },
      { outcome: 'conflict', table: 'orders', key: { id: 2 }, message: 'the record no longer exists' },
      { outcome: 'unchanged', table: 'orders', key: { id: 3 } },
      { outcome: 'conflict', table: 'orders', key: { id: 4 }, message: 'changed since the run' },
      { outcome: 'restored', table: 'orders', key: { id: 5 } },
    ]);
    expect(orderRows(fix.db)).toEqual([
      { id: 1, status: 'shipped' },
      { id: 3, status: 'canceled' },
      { id: 4, status: null },
      { id: 5, status: 'canceled' },
    ]);
  });

  it('undo run again finds every record as before: all unchanged, nothing written', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    await undoJournal(journal, { dryRun: false });
    const undone = dumpSqlite(fix.db);
    const { summary, events } = await undoCollecting(journal);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, unchanged: ORDERS });
    expect(events.map((e) => e.outcome)).toEqual(Array(ORDERS).fill('unchanged'));
    expect(dumpSqlite(fix.db)).toEqual(undone);
  });

  it('a write the run could not make (the database refused it) needs nothing: counted as not written', async () => {
    const fix = fresh();
    // The application's own rule: order 3 may not be renamed.
    sqliteExec(fix.db, "CREATE TRIGGER keep_3 BEFORE UPDATE ON orders WHEN NEW.id = 3 BEGIN SELECT RAISE(ABORT, 'order 3 is frozen'); END");
    const before = dumpSqlite(fix.db);
    const run = await liveRun(fix);
    expect(run.summary).toMatchObject({ total: ORDERS, updated: ORDERS - 1, failed: 1 });
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'cancelled', 'cancelled']);

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, notWritten: 1, restored: ORDERS - 1 });
    expect(events.map((e) => e.key.id)).toEqual([5, 4, 2, 1]);
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('an undo whose lock another process took over (unlock --force, then a run) stops before its next restore (DF713)', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const target = loadPlan(fix.spec, { env: fix.env }).target;
    // As `datafix undo` does: the undo holds the target lock and checks it before each batch.
    const own = TargetLock.acquire(target, { fix: 'rename-status', spec: fix.spec, purpose: 'undo' });
    let batches = 0;
    let other: TargetLock | undefined;
    const err = await rejectionOf(
      undoCollecting(journal, {
        batchSize: 2,
        fence: () => own.verify(),
        beforeRestore: () => {
          // Before the second batch: the lock is cleared by force and another process's run takes it.
          if (++batches !== 2) return;
          other = takeLockOver(target, fix.spec);
        },
      }),
    );
    other?.release();
    expect(err).toBeInstanceOf(DatafixError);
    // Stopped part-way (DF706), because of the lock (DF713): what was restored is said.
    expect((err as DatafixError).code).toBe('DF706');
    expect((err as DatafixError).message).toMatch(
      /stopped part-way: 2 record\(s\) were restored, .* and 3 journaled write\(s\) were not restored\. Cause: DF713 /,
    );
    // Only the first batch of two, newest first (orders 5 and 4), was restored; the others keep
    // what the run wrote.
    expect(statuses(fix.db)).toEqual([...Array(3).fill('cancelled'), 'canceled', 'canceled']);
  });

  it('a record changed or deleted between undo reading it and writing its restore is a conflict, changed while undoing', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const { summary, events } = await undoCollecting(journal, {
      beforeRestore: () => {
        // Another application, on its own connection, in the window between read and write.
        sqliteExec(fix.db, "UPDATE orders SET status = 'shipped' WHERE id = 4");
        sqliteExec(fix.db, 'DELETE FROM orders WHERE id = 2');
      },
    });
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: 3, conflicts: 2 });
    expect(events.filter((e) => e.outcome === 'conflict').sort(byId)).toEqual([
      { outcome: 'conflict', table: 'orders', key: { id: 2 }, message: 'changed while undoing' },
      { outcome: 'conflict', table: 'orders', key: { id: 4 }, message: 'changed while undoing' },
    ]);
    expect(orderRows(fix.db)).toEqual([
      { id: 1, status: 'canceled' },
      { id: 3, status: 'canceled' },
      { id: 4, status: 'shipped' },
      { id: 5, status: 'canceled' },
    ]);
  });

  it('a restore the database refuses is a failure with the database’s reason; the others are restored', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    sqliteExec(
      fix.db,
      "CREATE TRIGGER no_going_back BEFORE UPDATE ON orders WHEN NEW.id = 2 BEGIN SELECT RAISE(ABORT, 'order 2 may not go back'); END",
    );
    const { summary, events } = await undoCollecting(journal);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: ORDERS - 1, failed: 1 });
    const failed = events.filter((e) => e.outcome === 'failed');
    expect(failed).toEqual([{ outcome: 'failed', table: 'orders', key: { id: 2 }, message: 'order 2 may not go back' }]);
    expect(statuses(fix.db)).toEqual(['canceled', 'cancelled', 'canceled', 'canceled', 'canceled']);
  });

  it('a removed column (SQLite sets it NULL) gets its value back; one filled in again since is a conflict', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    const drop = libraryFix(
      fix.dir,
      fix.db,
      `name: drop-notes
target: { sqlite: { path: "\${DB}" } }
source: { table: orders, as: order, pageSize: 2 }
update:
  table: orders
  key: { id: "{{ order.id }}" }
  remove: [note]
`,
    );
    const run = await liveRun(drop);
    expect(run.summary).toMatchObject({ total: ORDERS, updated: ORDERS });
    expect(sqliteAll(fix.db, 'SELECT note FROM orders').map((r) => r.note)).toEqual(Array(ORDERS).fill(null));
    sqliteExec(fix.db, "UPDATE orders SET note = 'new note' WHERE id = 3");

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: ORDERS - 1, conflicts: 1 });
    expect(events.filter((e) => e.outcome === 'conflict')).toEqual([
      { outcome: 'conflict', table: 'orders', key: { id: 3 }, message: 'changed since the run' },
    ]);
    sqliteExec(fix.db, "UPDATE orders SET note = 'note 3' WHERE id = 3");
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('integers beyond 2^53 and blobs are restored exactly, and created rows holding them are deleted', async () => {
    const dir = tmp();
    const db = dir.file('ledger.db');
    const big = (i: number) => 9007199254740993n + BigInt(i);
    const conn = new Database(db);
    conn.exec(
      'CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER, amount_new INTEGER, blob BLOB); CREATE TABLE copies (id INTEGER PRIMARY KEY, amount INTEGER, blob BLOB)',
    );
    const insert = conn.prepare('INSERT INTO ledger VALUES (?, ?, ?, ?)');
    for (let i = 1; i <= 4; i++) insert.run(i, i % 2 ? big(i) : null, 9223372036854775807n - BigInt(i), Buffer.from([0, 255, i]));
    conn.close();
    const before = dumpSqlite(db);
    const update = libraryFix(
      dir,
      db,
      `name: ledger-exact
target: { sqlite: { path: "\${DB}" } }
source: { table: ledger, as: row }
update:
  table: ledger
  key: { id: "{{ row.id }}" }
  set: { amount: "{{ row.amount_new }}" }
  overwrite: true
`,
    );
    // Its own working directory: another fix, another spec file.
    const copy = libraryFix(
      tmp(),
      db,
      `name: ledger-copies
target: { sqlite: { path: "\${DB}" } }
source: { table: ledger, as: row }
create:
  table: copies
  key: { id: "{{ row.id }}" }
  set: { amount: "{{ row.amount_new }}", blob: "{{ row.blob }}" }
`,
    );
    const created = await liveRun(copy);
    const updated = await liveRun(update);
    expect(created.summary).toMatchObject({ total: 4, updated: 4 });
    expect(updated.summary).toMatchObject({ total: 4, updated: 4 });
    expect(query(db, 'SELECT amount FROM copies ORDER BY id', [], { safeIntegers: true })).toEqual(
      [1, 2, 3, 4].map((i) => ({ amount: 9223372036854775807n - BigInt(i) })),
    );
    expect(await undoJournal(updated.journal as string, { dryRun: false })).toMatchObject({ total: 4, ...zero, restored: 4 });
    expect(await undoJournal(created.journal as string, { dryRun: false })).toMatchObject({ total: 4, ...zero, restored: 4 });
    expect(dumpSqlite(db)).toEqual(before);
  });

  it('values the database keeps in its own form (whole numbers in a REAL column) are restored without a false conflict', async () => {
    const dir = tmp();
    const db = dir.file('scores.db');
    createDb(
      db,
      `CREATE TABLE scores (id INTEGER PRIMARY KEY, n INTEGER, score REAL, ratio REAL, t TEXT);
       INSERT INTO scores VALUES (1, 7, 1.5, 0.25, '0.1000000000000000000001'), (2, 8, NULL, 0.5, '123456789012345678901234567890'), (3, -2, 2.0, 1e300, '1e400');`,
    );
    const before = dumpSqlite(db);
    const fix = libraryFix(
      dir,
      db,
      `name: score-from-n
target: { sqlite: { path: "\${DB}" } }
source: { table: scores, as: s }
update:
  table: scores
  key: { id: "{{ s.id }}" }
  set: { score: "{{ s.n }}", ratio: "{{ s.t }}" }
  overwrite: true
`,
    );
    const run = await liveRun(fix);
    expect(run.summary).toMatchObject({ total: 3, updated: 3 });
    // SQLite keeps them as REAL: 7.0, not the INTEGER 7.
    expect(sqliteAll(db, 'SELECT typeof(score) AS t, score FROM scores ORDER BY id')).toEqual([
      { t: 'real', score: 7 },
      { t: 'real', score: 8 },
      { t: 'real', score: -2 },
    ]);
    const { summary } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 3, ...zero, restored: 3 });
    expect(dumpSqlite(db)).toEqual(before);
  });
});

describe('undo and the checkpoint a run keeps in the database', () => {
  it('undo of a stopped run removes its checkpoint: the database is byte for byte as before the run', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    const stopped = await liveRun(fix, stopAfterPages(1));
    expect(stopped.interrupted).toBe(true);
    expect(checkpointRows(fix.db)).toBe(1);

    // A dry run changes nothing, the checkpoint included: the run can still be resumed.
    await undoJournal(stopped.journal as string, { dryRun: true });
    expect(checkpointRows(fix.db)).toBe(1);

    const summary = await undoJournal(stopped.journal as string, { dryRun: false });
    expect(summary).toMatchObject({ total: 2, restored: 2 });
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('undo of an earlier run leaves the checkpoint of the run that started over since: that one still resumes', async () => {
    const fix = fresh();
    const first = await liveRun(fix, stopAfterPages(1));
    // Started over (not resumed): a new run id, the same checkpoint row, stopped after its first page.
    sqliteExec(fix.db, "UPDATE orders SET status = 'canceled' WHERE id IN (1, 2)");
    const second = await liveRun(fix, stopAfterPages(1));
    expect(second.journal).not.toBe(first.journal);
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'canceled', 'canceled']);

    // The first run's writes were made over by hand and again by the second: they hold what it wrote.
    expect(await undoJournal(first.journal as string, { dryRun: false })).toMatchObject({ total: 2, restored: 2 });
    expect(checkpointRows(fix.db)).toBe(1);
    expect(statuses(fix.db)).toEqual(NONE_RENAMED);

    // The second run goes on after its own first page.
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.resumed).toMatchObject({ pages: 1, records: 2 });
    expect(resumed.summary).toMatchObject({ total: 3, updated: 3 });
    expect(statuses(fix.db)).toEqual(['canceled', 'canceled', 'cancelled', 'cancelled', 'cancelled']);
  });
});

describe('undo stopped part-way', () => {
  it('Ctrl-C between batches: the batch in flight is restored, the rest waits; undo again finishes', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    const stopped = await liveRun(fix, stopAfterPages(2));
    const journal = stopped.journal as string;
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled', 'canceled']);
    const stop = new AbortController();
    const events: UndoEvent[] = [];
    const summary = await undoJournal(journal, {
      dryRun: false,
      batchSize: 1,
      signal: stop.signal,
      onEvent: (e) => {
        events.push(e);
        stop.abort();
      },
    });
    expect(summary).toEqual({
      journal,
      fix: 'rename-status',
      dryRun: false,
      total: 1,
      ...zero,
      restored: 1,
      durationMs: summary.durationMs,
      interrupted: true,
    });
    expect(events.map((e) => e.key.id)).toEqual([4]);
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'cancelled', 'canceled', 'canceled']);
    // Only a whole undo ends the run: its checkpoint stays until then.
    expect(checkpointRows(fix.db)).toBe(1);

    const again = await undoJournal(journal, { dryRun: false, batchSize: 1 });
    expect(again).toMatchObject({ total: 4, ...zero, unchanged: 1, restored: 3 });
    expect(again.interrupted).toBeUndefined();
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('a stop signal before the first batch restores nothing and counts nothing', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const stop = new AbortController();
    stop.abort();
    const summary = await undoJournal(journal, { dryRun: false, signal: stop.signal });
    expect(summary).toMatchObject({ total: 0, ...zero, interrupted: true });
    expect(statuses(fix.db)).toEqual(ALL_RENAMED);
  });

  it('a database locked part-way: DF706 says what was restored and what was not; undo again finishes', async () => {
    const fix = fresh(50);
    const before = dumpSqlite(fix.db);
    const journal = await runToEnd(fix);
    let batches = 0;
    const err = await withOtherWriter(fix.db, (lock) =>
      undoJournal(journal, {
        dryRun: false,
        batchSize: 2,
        beforeRestore: () => {
          // Another application takes the write lock before the second batch is written.
          if (++batches === 2) lock();
        },
      }).catch((e: unknown) => e),
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).code).toBe('DF706');
    expect((err as DatafixError).category).toBe('connection');
    expect((err as DatafixError).message).toBe(
      `undo of ${journal} stopped part-way: 2 record(s) were restored, 0 already held their before-image, 0 conflict(s) and 0 failure(s) were left alone, 0 write(s) the run never made need nothing, and 3 journaled write(s) were not restored. Cause: DF411 ${fix.db} is locked by another process and stayed locked for 50 ms; nothing of the current batch was written. Retry when it is free, or raise target.sqlite.busyTimeoutMs. Fix the cause and run undo again: records already restored then count as unchanged`,
    );
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'cancelled', 'canceled', 'canceled']);
    const again = await undoJournal(journal, { dryRun: false, batchSize: 2 });
    expect(again).toMatchObject({ total: ORDERS, ...zero, unchanged: 2, restored: 3 });
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('DF706 counts every outcome up to the stop: restored, unchanged, conflicts, failures, never written, and the rest', async () => {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, cancelledOrders(7));
    const fix = libraryFix(dir, db, renameSpec(2, 50));
    // Order 3 cannot be renamed by the run: its write is journaled as not made.
    sqliteExec(db, "CREATE TRIGGER keep_3 BEFORE UPDATE ON orders WHEN NEW.id = 3 BEGIN SELECT RAISE(ABORT, 'frozen'); END");
    const run = await liveRun(fix);
    expect(run.summary).toMatchObject({ total: 7, updated: 6, failed: 1 });
    sqliteExec(db, 'DROP TRIGGER keep_3');
    sqliteExec(db, "UPDATE orders SET status = 'canceled' WHERE id = 6");
    sqliteExec(db, "UPDATE orders SET status = 'shipped' WHERE id = 5");
    sqliteExec(db, "CREATE TRIGGER keep_4 BEFORE UPDATE ON orders WHEN NEW.id = 4 BEGIN SELECT RAISE(ABORT, 'order 4 stays'); END");
    const journal = run.journal as string;
    // Newest first, one record a batch: 7 restored, 6 unchanged, 5 a conflict, 4 refused, 3 never
    // written; another application locks the database before 2 is restored.
    const err = await withOtherWriter(db, (lock) =>
      undoJournal(journal, {
        dryRun: false,
        batchSize: 1,
        beforeRestore: (writes) => {
          if (writes.some((w) => w.key.id === 2)) lock();
        },
      }).catch((e: unknown) => e),
    );
    expect(openHandlesTo(db)).toBe(0);
    expect((err as DatafixError).code).toBe('DF706');
    expect((err as DatafixError).message).toBe(
      `undo of ${journal} stopped part-way: 1 record(s) were restored, 1 already held their before-image, 1 conflict(s) and 1 failure(s) were left alone, 1 write(s) the run never made need nothing, and 2 journaled write(s) were not restored. Cause: DF411 ${db} is locked by another process and stayed locked for 50 ms; nothing of the current batch was written. Retry when it is free, or raise target.sqlite.busyTimeoutMs. Fix the cause and run undo again: records already restored then count as unchanged`,
    );
    expect(orderRows(db)).toEqual([
      { id: 1, status: 'cancelled' },
      { id: 2, status: 'cancelled' },
      { id: 3, status: 'canceled' },
      { id: 4, status: 'cancelled' },
      { id: 5, status: 'shipped' },
      { id: 6, status: 'canceled' },
      { id: 7, status: 'canceled' },
    ]);
  });

  it('a listener that throws (its output closed) stops a dry run with DF706 naming the cause and what would have been restored', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    let seen = 0;
    const err = await undoJournal(journal, {
      dryRun: true,
      onEvent: () => {
        if (++seen === 3) throw new Error('write EPIPE');
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).code).toBe('DF706');
    expect((err as DatafixError).category).toBe('connection');
    expect((err as DatafixError).message).toBe(
      `undo of ${journal} stopped part-way: 3 record(s) would have been restored, 0 already held their before-image, 0 conflict(s) and 0 failure(s) were left alone, 0 write(s) the run never made need nothing, and 2 journaled write(s) were not restored. Cause: write EPIPE. Fix the cause and run undo again: records already restored then count as unchanged`,
    );
    expect(statuses(fix.db)).toEqual(ALL_RENAMED);
  });

  it('Ctrl-C while waiting for a locked database: the batch waited for is not counted, and undo again finishes', async () => {
    const fix = fresh(50);
    const before = dumpSqlite(fix.db);
    const journal = await runToEnd(fix);
    const stop = new AbortController();
    let batches = 0;
    const summary = await withOtherWriter(fix.db, (lock) =>
      undoJournal(journal, {
        dryRun: false,
        batchSize: 2,
        signal: stop.signal,
        beforeRestore: () => {
          if (++batches === 2) {
            lock();
            // Ctrl-C while the restore waits for the lock.
            setImmediate(() => stop.abort());
          }
        },
      }),
    );
    expect(summary).toMatchObject({ total: 2, ...zero, restored: 2, interrupted: true });
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'cancelled', 'canceled', 'canceled']);
    const again = await undoJournal(journal, { dryRun: false });
    expect(again).toMatchObject({ total: ORDERS, ...zero, unchanged: 2, restored: 3 });
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('a listener that cannot keep up holds undo: the next batch is read only once its promise settles', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const order: string[] = [];
    const summary = await undoJournal(journal, {
      dryRun: false,
      batchSize: 2,
      onEvent: (e) => {
        order.push(`event ${e.key.id}`);
        // Longer than undo takes to read and restore a batch, so that a batch read before the
        // wait ended would show in the order.
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            order.push(`written ${e.key.id}`);
            resolve();
          }, 50),
        );
      },
    });
    expect(summary).toMatchObject({ total: ORDERS, restored: ORDERS });
    // The wait is for the batch's last line: earlier ones of the batch drain meanwhile.
    expect(order.indexOf('written 4')).toBeLessThan(order.indexOf('event 3'));
    expect(order.indexOf('written 2')).toBeLessThan(order.indexOf('event 1'));
  });

  it('a listener that asks to wait only now and then (its output full for one line) is waited for too', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    const order: string[] = [];
    await undoJournal(journal, {
      dryRun: false,
      batchSize: 2,
      onEvent: (e) => {
        order.push(`event ${e.key.id}`);
        // Only the batch's first line finds the output full; the second goes through.
        if (e.key.id !== 5) return;
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            order.push('drained');
            resolve();
          }, 100),
        );
      },
    });
    expect(order).toEqual(['event 5', 'event 4', 'drained', 'event 3', 'event 2', 'event 1']);
  });
});

describe('undo of writes whose outcome the run never recorded', () => {
  it('the journal could not be written after the rows were: those rows are restored, unless changed since', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    // ENOSPC on the journal's first write after a row changed in the database: the outcomes of
    // the page just written are never recorded, as when a disk fills at that moment.
    const write = journalFs.writeSync;
    vi.spyOn(journalFs, 'writeSync').mockImplementation(((...args: Parameters<typeof write>) => {
      if (statuses(fix.db).includes('cancelled')) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return (write as (...a: Parameters<typeof write>) => number)(...args);
    }) as typeof write);
    // One page at a time: where pages overlap, page 2's line may be journaled before page 1's
    // rows change, and page 2 then written too.
    const err = await liveRun(fix, { overlapPages: false }).catch((e: unknown) => e);
    vi.restoreAllMocks();
    expect((err as DatafixError).code).toBe('DF704');
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'canceled', 'canceled']);
    const journal = /datafix undo (\S+)$/.exec((err as DatafixError).message)?.[1] as string;

    // A caller that listens to nothing (no notes) can look first.
    expect(await undoJournal(journal, { dryRun: true })).toMatchObject({ total: 2, ...zero, restored: 2 });
    sqliteExec(fix.db, "UPDATE orders SET status = 'shipped' WHERE id = 2");
    const { summary, events, notes } = await undoCollecting(journal);
    expect(summary).toMatchObject({ total: 2, ...zero, restored: 1, conflicts: 1 });
    expect(events).toEqual([
      {
        outcome: 'conflict',
        table: 'orders',
        key: { id: 2 },
        message: 'the run stopped before recording this write; the record holds neither its before-image nor what the run wrote',
      },
      { outcome: 'restored', table: 'orders', key: { id: 1 } },
    ]);
    expect(notes).toEqual([
      `${journal} has no end line: the run was stopped (killed, interrupted, out of disk) or the journal was cut short. Undo restores every write the journal holds; if lines were cut from its end, the writes they recorded are not restored`,
    ]);
    expect(statuses(fix.db)).toEqual(['canceled', 'shipped', 'canceled', 'canceled', 'canceled']);
    sqliteExec(fix.db, "UPDATE orders SET status = 'canceled' WHERE id = 2");
    expect(dumpSqlite(fix.db)).toEqual(before);
  });

  it('a run stopped by a locked database and resumed journals a page twice: undo restores it without false conflicts', async () => {
    const fix = fresh(50);
    const before = dumpSqlite(fix.db);
    let pages = 0;
    const err = await withOtherWriter(fix.db, (lock) =>
      liveRun(fix, {
        // The lock is taken between pages: nothing of page 2 may be under way then.
        overlapPages: false,
        onEvent: (e) => {
          // Another application takes the write lock after the first page: the second fails.
          if (e.type === 'page' && ++pages === 1) lock();
        },
      }).catch((e: unknown) => e),
    );
    expect((err as DatafixError).code).toBe('DF411');
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'canceled', 'canceled']);
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.wholeRun).toMatchObject({ total: ORDERS, updated: ORDERS });
    expect(statuses(fix.db)).toEqual(ALL_RENAMED);

    // Orders 3 and 4 were journaled by the failed page and again by the resumed run.
    const { summary, events } = await undoCollecting(resumed.journal as string);
    expect(summary).toMatchObject({ total: ORDERS + 2, ...zero, restored: ORDERS, unchanged: 2 });
    expect(events.map((e) => `${e.key.id} ${e.outcome}`)).toEqual([
      '5 restored',
      '4 restored',
      '3 restored',
      '4 unchanged',
      '3 unchanged',
      '2 restored',
      '1 restored',
    ]);
    expect(dumpSqlite(fix.db)).toEqual(before);
  });
});

describe('a journal an older datafix wrote (format 1: no checksums)', () => {
  /** The rename's journal as datafix wrote it before journals carried checksums: lines as they were then. */
  function formatOneJournal(fix: LibraryFix): string {
    const lines: unknown[] = [
      {
        type: 'header',
        format: 1,
        fix: 'rename-status',
        specFile: fix.spec,
        specChecksum: '0'.repeat(64),
        target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 },
        startedAt: '2025-01-02T03:04:05.678Z',
      },
    ];
    for (let id = 1; id <= ORDERS; id++) {
      lines.push({
        type: 'write',
        seq: id,
        table: 'orders',
        key: { id },
        fields: [{ name: 'status', before: 'canceled', after: 'cancelled' }],
      });
      lines.push({ type: 'result', seq: id, status: 'applied' });
    }
    lines.push({ type: 'end', at: '2025-01-02T03:04:06.000Z', summary: { total: ORDERS, updated: ORDERS, skipped: 0, failed: 0 } });
    return fix.dir.write('old.journal.jsonl', `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  }

  it('is refused without allowUnverified (DF707, nothing restored), and undone with it after a note', async () => {
    const fix = fresh();
    const before = dumpSqlite(fix.db);
    await runToEnd(fix);
    const afterRun = dumpSqlite(fix.db);
    const journal = formatOneJournal(fix);

    const refused = await undoJournal(journal, { dryRun: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DatafixError);
    expect((refused as DatafixError).code).toBe('DF707');
    expect((refused as DatafixError).category).toBe('usage');
    expect((refused as DatafixError).message).toBe(
      `${journal} is a format-1 journal: its lines carry no checksums, so edits to it cannot be detected, and nothing was restored. If it was written by an older datafix and nobody changed it since, run undo again with --unverified`,
    );
    expect(dumpSqlite(fix.db)).toEqual(afterRun);

    // A caller that listens to nothing (no notes) can look first.
    expect(await undoJournal(journal, { dryRun: true, allowUnverified: true })).toMatchObject({ total: ORDERS, restored: ORDERS });
    const { summary, notes } = await undoCollecting(journal, { allowUnverified: true });
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: ORDERS });
    expect(notes).toEqual([
      `${journal} is a format-1 journal (written before journals carried checksums): its lines cannot be verified against edits, so undo trusts them as written`,
    ]);
    expect(dumpSqlite(fix.db)).toEqual(before);
  });
});

describe('undo of deletes and creates on SQLite (whole records)', () => {
  /** parents 1 and 2; kids 10–15, of which 12, 13 and 14 belong to parent 9, which does not exist. */
  function family(): LibraryFix & { before: ReturnType<typeof dumpSqlite> } {
    const dir = tmp();
    const db = dir.file('family.db');
    createDb(
      db,
      `CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, status TEXT DEFAULT 'new');
       CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, name TEXT, score REAL, data BLOB);
       INSERT INTO parents (id, name) VALUES (1, 'p1'), (2, 'p2');
       INSERT INTO kids VALUES (10, 1, 'k10', 1.5, NULL), (11, 2, 'k11', NULL, x'00'),
         (12, 9, 'k12', 0.1, x'00ff10'), (13, 9, NULL, NULL, NULL), (14, 9, 'k14', 2.25, x'01'), (15, 1, 'k15', 3.0, NULL);`,
    );
    return { ...libraryFix(dir, db, ''), before: dumpSqlite(db) };
  }

  const kids = (db: string) => sqliteAll(db, 'SELECT * FROM kids ORDER BY id');

  it('a deleted row is created again byte for byte where its key is free; one created again as it was is unchanged; another is a conflict', async () => {
    const f = family();
    const fix = libraryFix(
      f.dir,
      f.db,
      `name: delete-orphans
target: { sqlite: { path: "\${DB}" } }
source: { table: kids, as: kid, pageSize: 2 }
lookups:
  parent: { table: parents, get: { id: "{{ kid.parent_id }}" } }
skip:
  - { reason: parent_exists, when: { exists: parent.id } }
delete:
  key: { id: "{{ kid.id }}" }
`,
    );
    const run = await liveRun(fix);
    expect(run.summary).toMatchObject({ total: 6, updated: 3, skipped: 3, failed: 0 });
    expect(kids(f.db).map((k) => k.id)).toEqual([10, 11, 15]);
    // Kid 13 put back by hand exactly as it was; kid 14's id taken by another row.
    sqliteExec(f.db, 'INSERT INTO kids VALUES (13, 9, NULL, NULL, NULL)');
    sqliteExec(f.db, "INSERT INTO kids VALUES (14, 1, 'someone else', NULL, NULL)");

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 3, ...zero, restored: 1, unchanged: 1, conflicts: 1 });
    expect(events.sort(byId)).toEqual([
      { outcome: 'restored', table: 'kids', key: { id: 12 } },
      { outcome: 'unchanged', table: 'kids', key: { id: 13 } },
      {
        outcome: 'conflict',
        table: 'kids',
        key: { id: 14 },
        message: 'a record with this key exists again and differs from the one deleted; it was left alone',
      },
    ]);
    sqliteExec(f.db, "UPDATE kids SET parent_id = 9, name = 'k14', score = 2.25, data = x'01' WHERE id = 14");
    expect(dumpSqlite(f.db)).toEqual(f.before);
  });

  it('a created row is deleted while it holds what the run created; one changed, filled in or gone since is left alone', async () => {
    const f = family();
    sqliteExec(
      f.db,
      'INSERT INTO kids VALUES (16, 7, NULL, NULL, NULL), (17, 8, NULL, NULL, NULL), (18, 6, NULL, NULL, NULL), (19, 5, NULL, NULL, NULL)',
    );
    sqliteExec(f.db, 'CREATE TABLE notes (kid INTEGER PRIMARY KEY, text TEXT)');
    sqliteExec(f.db, "INSERT INTO notes VALUES (12, 'from the note of kid 12')");
    const before = dumpSqlite(f.db);
    const fix = libraryFix(
      f.dir,
      f.db,
      `name: create-parents
target: { sqlite: { path: "\${DB}" } }
source: { table: kids, as: kid, pageSize: 2 }
lookups:
  info: { table: notes, get: { kid: "{{ kid.id }}" } }
create:
  table: parents
  key: { id: "{{ kid.parent_id }}" }
  set: { name: "for kid {{ kid.id }}", note: "{{ info.text }}" }
`,
    );
    const run = await liveRun(fix);
    // Parents 9 (for kid 12, with its note), 7, 8, 6 and 5 are created; the note is left out where a kid has none.
    expect(sqliteAll(f.db, 'SELECT id, name, note, status FROM parents WHERE id > 2 ORDER BY id')).toEqual([
      { id: 5, name: 'for kid 19', note: null, status: 'new' },
      { id: 6, name: 'for kid 18', note: null, status: 'new' },
      { id: 7, name: 'for kid 16', note: null, status: 'new' },
      { id: 8, name: 'for kid 17', note: null, status: 'new' },
      { id: 9, name: 'for kid 12', note: 'from the note of kid 12', status: 'new' },
    ]);
    expect(run.summary).toMatchObject({ updated: 5, failed: 0 });
    sqliteExec(f.db, "UPDATE parents SET status = 'checked' WHERE id = 7");
    sqliteExec(f.db, "UPDATE parents SET name = 'renamed', status = 'checked' WHERE id = 8");
    sqliteExec(f.db, 'DELETE FROM parents WHERE id = 6');

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 5, ...zero, restored: 2, unchanged: 1, conflicts: 2 });
    expect(events.sort(byId)).toEqual([
      { outcome: 'restored', table: 'parents', key: { id: 5 } },
      { outcome: 'unchanged', table: 'parents', key: { id: 6 } },
      { outcome: 'conflict', table: 'parents', key: { id: 7 }, message: 'changed since the run created it (status); it was left alone' },
      {
        outcome: 'conflict',
        table: 'parents',
        key: { id: 8 },
        message: 'changed since the run created it (name, status); it was left alone',
      },
      { outcome: 'restored', table: 'parents', key: { id: 9 } },
    ]);
    expect(sqliteAll(f.db, 'SELECT id, name, status FROM parents WHERE id IN (7, 8) ORDER BY id')).toEqual([
      { id: 7, name: 'for kid 16', status: 'checked' },
      { id: 8, name: 'renamed', status: 'checked' },
    ]);
    sqliteExec(f.db, 'DELETE FROM parents WHERE id IN (7, 8)');
    expect(dumpSqlite(f.db)).toEqual(before);
  });

  it('a deleted or created record changed between undo reading it and writing is a conflict, changed while undoing', async () => {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, cancelledOrders(3));
    sqliteExec(db, 'CREATE TABLE archive (id INTEGER PRIMARY KEY, status TEXT, note TEXT)');
    const table = (name: string) => sqliteAll(db, `SELECT id, status, note FROM ${name} ORDER BY id`);
    const created = await liveRun(
      libraryFix(
        dir,
        db,
        'name: archive-orders\ntarget: { sqlite: { path: "${DB}" } }\nsource: { table: orders, as: order }\ncreate:\n  table: archive\n  key: { id: "{{ order.id }}" }\n  set: { status: "{{ order.status }}", note: archived }\n',
      ),
    );
    expect(created.summary).toMatchObject({ total: 3, updated: 3, failed: 0 });
    // Another application edits archived row 2 after undo read it as the run created it: undo's
    // delete of that row must be guarded on the row as read, not on its key alone.
    const undoCreate = await undoCollecting(created.journal as string, {
      beforeRestore: () => sqliteExec(db, "UPDATE archive SET note = 'kept by the app' WHERE id = 2"),
    });
    expect(undoCreate.summary).toMatchObject({ total: 3, ...zero, restored: 2, conflicts: 1 });
    expect(undoCreate.events.filter((e) => e.outcome === 'conflict')).toEqual([
      { outcome: 'conflict', table: 'archive', key: { id: 2 }, message: 'changed while undoing' },
    ]);
    expect(table('archive')).toEqual([{ id: 2, status: 'canceled', note: 'kept by the app' }]);

    const removed = await liveRun(
      libraryFix(
        dir,
        db,
        'name: drop-orders\ntarget: { sqlite: { path: "${DB}" } }\nsource: { table: orders, as: order }\ndelete:\n  key: { id: "{{ order.id }}" }\n',
      ),
    );
    expect(removed.summary).toMatchObject({ total: 3, updated: 3, failed: 0 });
    // Another application creates order 3 anew after undo found its key free: undo's create must
    // not replace it.
    const undoDelete = await undoCollecting(removed.journal as string, {
      beforeRestore: () => sqliteExec(db, "INSERT INTO orders VALUES (3, 'new', 'the app’s order 3')"),
    });
    expect(undoDelete.summary).toMatchObject({ total: 3, ...zero, restored: 2, conflicts: 1 });
    expect(undoDelete.events.filter((e) => e.outcome === 'conflict')).toEqual([
      { outcome: 'conflict', table: 'orders', key: { id: 3 }, message: 'changed while undoing' },
    ]);
    expect(table('orders')).toEqual([
      { id: 1, status: 'canceled', note: 'note 1' },
      { id: 2, status: 'canceled', note: 'note 2' },
      { id: 3, status: 'new', note: 'the app’s order 3' },
    ]);
  });
});

describe('undo on DynamoDB (dynalite)', () => {
  const dynamo = useDynaliteTables('undo');
  /** A new media table holding `items`, and a fix on it. */
  async function tableWith(items: Record<string, unknown>[], specText: string): Promise<LibraryFix & { table: string }> {
    const table = await dynamo.table(items);
    return { ...dynamoFix(tmp(), dynamo.endpoint(), table, specText), table };
  }

  const target = `target: { dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 } }`;
  const media = (id: string, extra: Record<string, unknown> = {}) => ({ PK: `MEDIA#${id}`, SK: 'METADATA', id, ...extra });
  const key = (pk: string) => ({ PK: pk, SK: 'METADATA' });
  const byPk = (a: UndoEvent, b: UndoEvent) => String(a.key.PK).localeCompare(String(b.key.PK));

  it('an update that filled absent attributes: undo makes them absent again; an item changed since is a conflict', async () => {
    const t = await tableWith(
      [media('a'), media('b'), media('c', { thumbnailUrl: 'own.jpg' }), media('d')],
      `name: fill-thumbnails
${target}
source: { as: m, scan: { pageSize: 2 } }
update:
  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }
  set: { thumbnailUrl: "https://cdn.example.com/{{ m.id }}.jpg" }
`,
    );
    const before = await scanRaw(dynamo.endpoint(), t.table);
    const run = await liveRun(t);
    expect(run.summary).toMatchObject({ total: 4, updated: 3, failed: 0 });
    await changeItem(dynamo.endpoint(), t.table, 'MEDIA#b', 'thumbnailUrl', 'https://other-writer.example/b.jpg');

    const { summary, events, targets } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 3, ...zero, restored: 2, conflicts: 1 });
    expect(events.sort(byPk)).toEqual([
      { outcome: 'restored', key: key('MEDIA#a') },
      { outcome: 'conflict', key: key('MEDIA#b'), message: 'changed since the run' },
      { outcome: 'restored', key: key('MEDIA#d') },
    ]);
    expect(targets).toEqual([`dynamodb ${t.table} (${dynamo.endpoint()})`]);
    const after = await scanRaw(dynamo.endpoint(), t.table);
    expect(after.find((i) => i.PK?.S === 'MEDIA#b')?.thumbnailUrl).toEqual({ S: 'https://other-writer.example/b.jpg' });
    expect(after.filter((i) => i.PK?.S !== 'MEDIA#b')).toEqual(before.filter((i) => i.PK?.S !== 'MEDIA#b'));
  });

  it('a table created again with another key schema since the run: each record fails with DynamoDB’s reason, nothing is written', async () => {
    const t = await tableWith(
      [media('a'), media('b')],
      `name: fill-thumbnails
${target}
source: { as: m, scan: { pageSize: 2 } }
update:
  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }
  set: { thumbnailUrl: "https://cdn.example.com/{{ m.id }}.jpg" }
`,
    );
    const run = await liveRun(t);
    expect(run.summary).toMatchObject({ total: 2, updated: 2 });
    const client = rawClient(dynamo.endpoint());
    try {
      await client.send(new DeleteTableCommand({ TableName: t.table }));
    } finally {
      client.destroy();
    }
    await createNumericSortKeyTable(dynamo.endpoint(), t.table);
    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 2, ...zero, failed: 2 });
    expect(events.sort(byPk)).toEqual([
      { outcome: 'failed', key: key('MEDIA#a'), message: 'key attribute `SK` is S but the table declares it N' },
      { outcome: 'failed', key: key('MEDIA#b'), message: 'key attribute `SK` is S but the table declares it N' },
    ]);
    expect(await scanRaw(dynamo.endpoint(), t.table)).toEqual([]);
  });

  it('undo reads each record with a consistent read: it compares against the latest write', async () => {
    const reads: Record<string, unknown>[] = [];
    const proxy = await startCountingProxy(dynamo.endpoint(), {
      fault: (r) => {
        if (r.operation === 'BatchGetItem') reads.push(JSON.parse(r.body) as Record<string, unknown>);
        return undefined;
      },
    });
    try {
      const table = await dynamo.table([media('a'), media('b'), media('c')]);
      const fix = dynamoFix(
        tmp(),
        proxy.endpoint,
        table,
        `name: fill-thumbnails
${target}
source: { as: m, scan: { pageSize: 10 } }
update:
  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }
  set: { thumbnailUrl: "https://cdn.example.com/{{ m.id }}.jpg" }
`,
      );
      const run = await liveRun(fix);
      expect(run.summary).toMatchObject({ total: 3, updated: 3 });
      reads.length = 0;
      expect(await undoJournal(run.journal as string, { dryRun: false })).toMatchObject({ total: 3, restored: 3 });
      expect(reads).toHaveLength(1);
      const asked = (reads[0] as { RequestItems: Record<string, { Keys: { PK: { S: string } }[]; ConsistentRead?: boolean }> })
        .RequestItems;
      expect(Object.keys(asked)).toEqual([table]);
      expect(asked[table]?.ConsistentRead).toBe(true);
      expect(asked[table]?.Keys.map((k) => k.PK.S).sort()).toEqual(['MEDIA#a', 'MEDIA#b', 'MEDIA#c']);
    } finally {
      await proxy.stop();
    }
  });

  it('a created item is deleted while as created; one that gained an attribute, changed or is gone is left alone', async () => {
    const t = await tableWith(
      [media('a', { size: '10' }), media('b', { size: '20' }), media('c'), media('d')],
      `name: create-thumbs
${target}
source: { as: m, scan: { pageSize: 2, filter: { beginsWith: { PK: "MEDIA#" } } } }
create:
  key: { PK: "THUMB#{{ m.id }}", SK: METADATA }
  set: { of: "{{ m.id }}", size: "{{ m.size }}" }
`,
    );
    const before = await scanRaw(dynamo.endpoint(), t.table);
    const run = await liveRun(t);
    expect(run.summary).toMatchObject({ total: 4, updated: 4, failed: 0 });
    // Items hold only the fields they were given: `size` is absent where the media had none.
    expect((await scanRaw(dynamo.endpoint(), t.table)).filter((i) => i.PK?.S?.startsWith('THUMB#'))).toEqual([
      { PK: { S: 'THUMB#a' }, SK: { S: 'METADATA' }, of: { S: 'a' }, size: { S: '10' } },
      { PK: { S: 'THUMB#b' }, SK: { S: 'METADATA' }, of: { S: 'b' }, size: { S: '20' } },
      { PK: { S: 'THUMB#c' }, SK: { S: 'METADATA' }, of: { S: 'c' } },
      { PK: { S: 'THUMB#d' }, SK: { S: 'METADATA' }, of: { S: 'd' } },
    ]);
    await changeItem(dynamo.endpoint(), t.table, 'THUMB#a', 'note', 'kept by hand');
    await changeItem(dynamo.endpoint(), t.table, 'THUMB#a', 'tag', 'blue');
    await changeItem(dynamo.endpoint(), t.table, 'THUMB#b', 'size', '99');
    await changeItem(dynamo.endpoint(), t.table, 'THUMB#c', '', undefined);

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 4, ...zero, restored: 1, unchanged: 1, conflicts: 2 });
    expect(events.sort(byPk)).toEqual([
      {
        outcome: 'conflict',
        key: key('THUMB#a'),
        // Attributes come back in the order the server keeps them.
        message: expect.stringMatching(/^changed since the run created it \(it gained (note, tag|tag, note)\); it was left alone$/),
      },
      { outcome: 'conflict', key: key('THUMB#b'), message: 'changed since the run created it; it was left alone' },
      { outcome: 'unchanged', key: key('THUMB#c') },
      { outcome: 'restored', key: key('THUMB#d') },
    ]);
    expect(await scanRaw(dynamo.endpoint(), t.table)).toEqual([
      ...before,
      { PK: { S: 'THUMB#a' }, SK: { S: 'METADATA' }, of: { S: 'a' }, size: { S: '10' }, note: { S: 'kept by hand' }, tag: { S: 'blue' } },
      { PK: { S: 'THUMB#b' }, SK: { S: 'METADATA' }, of: { S: 'b' }, size: { S: '99' } },
    ]);
  });

  it('a deleted item is put back whole where its key is free; one created again with other attributes is a conflict', async () => {
    const t = await tableWith(
      [media('a', { status: 'old', tags: 'x' }), media('b', { status: 'old' }), media('c', { status: 'new' })],
      `name: delete-old
${target}
source: { as: m, scan: { pageSize: 2 } }
skip:
  - { reason: not_old, when: { not: { equals: { m.status: old } } } }
delete:
  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }
`,
    );
    const before = await scanRaw(dynamo.endpoint(), t.table);
    const run = await liveRun(t);
    expect(run.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, failed: 0 });
    await seedItems(dynamo.endpoint(), t.table, [media('b', { status: 'reborn' })]);

    const { summary, events } = await undoCollecting(run.journal as string);
    expect(summary).toMatchObject({ total: 2, ...zero, restored: 1, conflicts: 1 });
    expect(events.sort(byPk)).toEqual([
      { outcome: 'restored', key: key('MEDIA#a') },
      {
        outcome: 'conflict',
        key: key('MEDIA#b'),
        message: 'a record with this key exists again and differs from the one deleted; it was left alone',
      },
    ]);
    const after = await scanRaw(dynamo.endpoint(), t.table);
    expect(after.filter((i) => i.PK?.S !== 'MEDIA#b')).toEqual(before.filter((i) => i.PK?.S !== 'MEDIA#b'));
    expect(after.find((i) => i.PK?.S === 'MEDIA#b')?.status).toEqual({ S: 'reborn' });
  });
});
