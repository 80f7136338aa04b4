/**
 * `undoJournal` in the test process, on journals written by live runs through the library: what
 * undo restores, leaves alone and reports for every state a record can be in afterwards (as the
 * run left it, changed since, deleted, already as before, never written, written without its
 * outcome recorded), and how it ends when stopped (Ctrl-C between batches, a locked database).
 * Each test checks the database afterwards against rows written here, and the summary's counts.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DatafixError } from '../../src/errors.js';
import { journalFs } from '../../src/safety/journal.js';
import { type UndoEvent, type UndoOptions, undoJournal } from '../../src/safety/undo.js';
import { useTempDirs } from '../helpers/tmp.js';
import { cancelledOrders, createOrdersDb, type LibraryFix, libraryFix, liveRun, renameSpec, stopAfterPages } from './library-runs.js';
import { dumpSqlite, sqliteAll, sqliteExec } from './support.js';

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

  it('a record changed or deleted since the run is a conflict and left alone; one already as before is unchanged', async () => {
    const fix = fresh();
    const journal = await runToEnd(fix);
    sqliteExec(fix.db, "UPDATE orders SET status = 'shipped' WHERE id = 1");
    sqliteExec(fix.db, 'DELETE FROM orders WHERE id = 2');
    sqliteExec(fix.db, "UPDATE orders SET status = 'canceled' WHERE id = 3");

    const { summary, events } = await undoCollecting(journal);
    expect(summary).toMatchObject({ total: ORDERS, ...zero, restored: 2, unchanged: 1, conflicts: 2 });
    expect(events.sort((a, b) => Number(a.key.id) - Number(b.key.id))).toEqual([
      { outcome: 'conflict', table: 'orders', key: { id: 1 }, message: 'changed since the run' },
      { outcome: 'conflict', table: 'orders', key: { id: 2 }, message: 'the record no longer exists' },
      { outcome: 'unchanged', table: 'orders', key: { id: 3 } },
      { outcome: 'restored', table: 'orders', key: { id: 4 } },
      { outcome: 'restored', table: 'orders', key: { id: 5 } },
    ]);
    expect(sqliteAll(fix.db, 'SELECT id, status FROM orders ORDER BY id')).toEqual([
      { id: 1, status: 'shipped' },
      { id: 3, status: 'canceled' },
      { id: 4, status: 'canceled' },
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
      batchSize: 3,
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
      total: 3,
      ...zero,
      restored: 3,
      durationMs: summary.durationMs,
      interrupted: true,
    });
    expect(events.map((e) => e.key.id)).toEqual([4, 3, 2]);
    expect(statuses(fix.db)).toEqual(['cancelled', 'canceled', 'canceled', 'canceled', 'canceled']);
    // Only a whole undo ends the run: its checkpoint stays until then.
    expect(checkpointRows(fix.db)).toBe(1);

    const again = await undoJournal(journal, { dryRun: false, batchSize: 3 });
    expect(again).toMatchObject({ total: 4, ...zero, unchanged: 3, restored: 1 });
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
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            order.push(`written ${e.key.id}`);
            resolve();
          }, 5),
        );
      },
    });
    expect(summary).toMatchObject({ total: ORDERS, restored: ORDERS });
    // The wait is for the batch's last line: earlier ones of the batch drain meanwhile.
    expect(order.indexOf('written 4')).toBeLessThan(order.indexOf('event 3'));
    expect(order.indexOf('written 2')).toBeLessThan(order.indexOf('event 1'));
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
    const err = await liveRun(fix).catch((e: unknown) => e);
    vi.restoreAllMocks();
    expect((err as DatafixError).code).toBe('DF704');
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'canceled', 'canceled']);
    const journal = /datafix undo (\S+)$/.exec((err as DatafixError).message)?.[1] as string;

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
