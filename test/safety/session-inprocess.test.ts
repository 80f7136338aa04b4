/**
 * `runPlanSafely` in the test process: what a live run, its stop and its `--resume` do to the
 * database, what they tell the person running them (notes, the resumed part, the whole run's
 * counts), and every refusal of a resume that would mix runs, specs, limits or databases (the
 * error code and message, and the database left as it was). Expected values come from the rows
 * seeded here.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { DatafixError } from '../../src/errors.js';
import { journalFs, openJournal } from '../../src/safety/journal.js';
import type { TargetLock } from '../../src/safety/lock.js';
import { listRuns, recordUndo } from '../../src/safety/runs.js';
import type { ResumedPart } from '../../src/safety/state.js';
import { RunStateStore, runKey } from '../../src/safety/state.js';
import { undoJournal } from '../../src/safety/undo.js';
import { createMediaTable, createNumericSortKeyTable, rawClient, seedItems, seedRawItems } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb } from '../sqlite/fixtures.js';
import {
  cancelledOrders,
  createOrdersDb,
  dynamoFix,
  type LibraryFix,
  libraryFix,
  liveRun,
  type Order,
  refusal,
  rejectionOf,
  renameSpec,
  saveStateEveryPage,
  stopAfterPages,
  takeLockOver,
  useDynaliteTables,
} from './library-runs.js';
import { dumpSqlite, scanRaw, sqliteAll } from './support.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.restoreAllMocks();
});

function ordersFix(rows: readonly Order[], spec = renameSpec(2)): LibraryFix {
  const dir = tmp();
  const db = dir.file('orders.db');
  createOrdersDb(db, rows);
  return libraryFix(dir, db, spec);
}

const statuses = (db: string) => sqliteAll<{ status: string }>(db, 'SELECT status FROM orders ORDER BY id').map((r) => r.status);

const keyOf = (fix: LibraryFix) => runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
const stateOf = (fix: LibraryFix) => new RunStateStore(fix.dir.path).read(keyOf(fix));
/** Where the rename fix keeps its run state for `fix`. */
const statePathOf = (fix: LibraryFix) => fix.dir.file('.datafix', 'runs', `${keyOf(fix)}.state.json`);

/**
 * A live run of `fix` stopped (as Ctrl-C stops it) once `pages` pages are done. Once page 1's
 * state file has landed, it is copied to `stateCopy` and `afterPage1` runs; so a test can put back
 * the state file as a crash a second or more later would have left it.
 */
async function runKeepingPage1State(
  fix: LibraryFix,
  pages: number,
  stateCopy: string,
  afterPage1?: () => void,
  onPage?: (page: number) => void,
) {
  const stop = new AbortController();
  let done = 0;
  return liveRun(fix, {
    signal: stop.signal,
    // It acts between pages: nothing of page 2 may be under way then.
    overlapPages: false,
    onEvent: async (e) => {
      if (e.type !== 'page') return;
      done++;
      if (done === 1) {
        await vi.waitFor(() => expect(stateOf(fix)).toMatchObject({ pages: 1 }));
        copyFileSync(statePathOf(fix), stateCopy);
        afterPage1?.();
      }
      onPage?.(done);
      if (done >= pages) stop.abort();
    },
  });
}

describe('a live run and its resume on SQLite', () => {
  it('says where its journal is; a stopped run resumed says where it goes on and counts the whole run, reasons sorted', async () => {
    // 1 is failed for a person to look at (first part); 4 is renamed already (skipped, second part).
    const rows: Order[] = cancelledOrders(6).map((o) =>
      o.id === 4 ? { ...o, status: 'cancelled' } : o.id === 1 ? { ...o, note: 'disputed' } : o,
    );
    const fix = ordersFix(
      rows,
      renameSpec(2).replace('update:', 'fail:\n  - { reason: disputed, when: { equals: { order.note: disputed } } }\nupdate:'),
    );
    const notes: string[] = [];
    const seen: string[] = [];
    const stop = new AbortController();
    const stopped = await liveRun(fix, {
      signal: stop.signal,
      onNote: (t) => notes.push(t),
      onEvent: (e) => {
        if (e.type !== 'writing') return;
        // While it runs, its state says so.
        seen.push(stateOf(fix)?.status as string);
        stop.abort();
      },
    });
    expect(seen).toEqual(['running']);
    const journal = stopped.journal as string;
    expect(notes).toEqual([`journal ${journal} (undo with: datafix undo ${journal})`]);
    expect(stopped.summary).toMatchObject({ total: 2, updated: 1, skipped: 0, failed: 1 });
    const atStop = stateOf(fix);

    const resumedNotes: string[] = [];
    const resumed = await liveRun(fix, { resume: true, onNote: (t) => resumedNotes.push(t) });
    expect(resumedNotes).toEqual([
      `journal ${journal} (undo with: datafix undo ${journal})`,
      `resuming after 2 record(s) in 1 page(s); journal ${journal}`,
    ]);
    expect(resumed.journal).toBe(journal);
    expect(resumed.summary).toMatchObject({ total: 4, updated: 3, skipped: 1, failed: 0 });
    expect(resumed.resumed).toEqual({
      startedAt: atStop?.startedAt,
      savedAt: atStop?.updatedAt,
      pages: 1,
      records: 2,
      journal,
      counts: { total: 2, updated: 1, skipped: 0, failed: 1, reasons: { disputed: 1 } },
    });
    expect(resumed.wholeRun).toEqual({ total: 6, updated: 4, skipped: 1, failed: 1, reasons: { already_renamed: 1, disputed: 1 } });
    expect(Object.keys((resumed.wholeRun as { reasons: object }).reasons)).toEqual(['already_renamed', 'disputed']);
    expect(statuses(fix.db)).toEqual(['canceled', ...Array(5).fill('cancelled')]);
    expect(stateOf(fix)).toMatchObject({
      status: 'done',
      startedAt: atStop?.startedAt,
      pages: 3,
      records: 6,
      counts: { total: 6, updated: 4, skipped: 1, failed: 1, reasons: { already_renamed: 1, disputed: 1 } },
    });
  });

  it('a resume asked to report its part gets it instead of a note', async () => {
    const fix = ordersFix(cancelledOrders(5));
    await liveRun(fix, stopAfterPages(2));
    const parts: ResumedPart[] = [];
    const notes: string[] = [];
    const resumed = await liveRun(fix, { resume: true, onResume: (p) => parts.push(p), onNote: (t) => notes.push(t) });
    expect(parts).toEqual([resumed.resumed]);
    expect(parts[0]).toMatchObject({ pages: 2, records: 4, counts: { total: 4, updated: 4 } });
    expect(notes.filter((n) => n.startsWith('resuming'))).toEqual([]);
    expect(resumed.summary).toMatchObject({ total: 1, updated: 1 });
  });

  it('a new run after a stopped one says it starts over, and writes a journal of its own', async () => {
    const fix = ordersFix(cancelledOrders(5));
    const first = await liveRun(fix, stopAfterPages(1));
    const notes: string[] = [];
    const second = await liveRun(fix, { onNote: (t) => notes.push(t) });
    expect(second.journal).not.toBe(first.journal);
    expect(notes).toEqual([
      'an earlier run of this fix on this target did not finish; starting over (--resume would continue it instead)',
      `journal ${second.journal} (undo with: datafix undo ${second.journal})`,
    ]);
    // Rows the first run renamed are as the fix wants them: only the other three are written.
    expect(second.summary).toMatchObject({ total: 5, updated: 3, skipped: 2 });
    expect(statuses(fix.db)).toEqual(Array(5).fill('cancelled'));
  });

  it("--resume keeps the interrupted run's limit; another limit is DF729", async () => {
    const fix = ordersFix(cancelledOrders(7));
    await liveRun(fix, { ...stopAfterPages(1), limit: 5 });
    expect(stateOf(fix)).toMatchObject({ limit: 5, records: 2 });
    const refused = await refusal(liveRun(fix, { resume: true, limit: 3 }));
    expect(refused.code).toBe('DF729');
    expect(refused.message).toBe("--limit 3 is not the interrupted run's --limit 5; resume with the same limit, or without --limit");
    // The same limit again is the run's own.
    const resumed = await liveRun(fix, { resume: true, limit: 5 });
    expect(resumed.summary).toMatchObject({ total: 3, updated: 3 });
    expect(statuses(fix.db)).toEqual([...Array(5).fill('cancelled'), 'canceled', 'canceled']);
  });

  it('a limit on the resume of a run that had none is DF729', async () => {
    const fix = ordersFix(cancelledOrders(5));
    await liveRun(fix, stopAfterPages(1));
    const refused = await refusal(liveRun(fix, { resume: true, limit: 4 }));
    expect(refused.code).toBe('DF729');
    expect(refused.message).toBe(
      "--limit 4 is not the interrupted run's limit (it had none); resume with the same limit, or without --limit",
    );
  });

  it('refuses what cannot be resumed: nothing there (DF721), a finished run (DF721), a dry run (DF722)', async () => {
    const fix = ordersFix(cancelledOrders(3));
    const before = dumpSqlite(fix.db);
    const nothing = await refusal(liveRun(fix, { resume: true }));
    expect(nothing.code).toBe('DF721');
    expect(nothing.message).toBe('there is no interrupted run of rename-status on this target to resume; run without --resume');
    const dry = await refusal(liveRun(fix, { resume: true, dryRun: true }));
    expect(dry.code).toBe('DF722');
    expect(dry.message).toBe('--resume continues a live run; it cannot be combined with --dry-run');
    expect(dumpSqlite(fix.db)).toEqual(before);
    await liveRun(fix);
    const done = await refusal(liveRun(fix, { resume: true }));
    expect(done.code).toBe('DF721');
    expect(done.message).toBe('there is no interrupted run of rename-status on this target to resume; run without --resume');
  });

  it('a spec changed since the stop is DF720, and nothing more is written', async () => {
    const fix = ordersFix(cancelledOrders(5));
    await liveRun(fix, stopAfterPages(1));
    const startedAt = stateOf(fix)?.startedAt;
    const afterStop = dumpSqlite(fix.db);
    writeFileSync(fix.spec, renameSpec(3));
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF720');
    expect(refused.message).toBe(
      `${fix.spec} changed since the interrupted run (${startedAt}); resuming would mix two different fixes. Run without --resume to start over (rows already fixed are skipped)`,
    );
    expect(dumpSqlite(fix.db)).toEqual(afterStop);
    expect(stateOf(fix)?.status).toBe('interrupted');
  });

  it('a state naming the journal of another run is DF725; nothing is appended to that journal', async () => {
    const other = ordersFix(cancelledOrders(3));
    const otherRun = await liveRun(other);
    const fix = ordersFix(cancelledOrders(5));
    await liveRun(fix, stopAfterPages(1));
    const store = new RunStateStore(fix.dir.path);
    const key = runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
    const state = store.read(key);
    store.write(key, { ...(state as NonNullable<typeof state>), journal: otherRun.journal as string });
    const journalBytes = readFileSync(otherRun.journal as string, 'utf8');
    const afterStop = dumpSqlite(fix.db);

    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF725');
    expect(refused.message).toMatch(
      new RegExp(
        `^the journal ${regexText(otherRun.journal as string)} named by the interrupted run's state does not belong to it \\(target sqlite ${regexText(other.db)}, not sqlite ${regexText(fix.db)}; run [0-9a-f-]{36}, not ${state?.runId}\\); nothing was appended to it\\. Run without --resume to start over with a journal of its own \\(rows already fixed are skipped\\)$`,
      ),
    );
    expect(readFileSync(otherRun.journal as string, 'utf8')).toBe(journalBytes);
    expect(dumpSqlite(fix.db)).toEqual(afterStop);
  });

  it('a state naming the journal of another fix on the same database is DF725, naming each difference', async () => {
    const fix = ordersFix(cancelledOrders(5));
    const otherDir = tmp();
    const other = libraryFix(otherDir, fix.db, renameSpec(2).replace('name: rename-status', 'name: rename-again'));
    const otherRun = await liveRun(other, stopAfterPages(1));
    const otherState = new RunStateStore(otherDir.path).read(
      runKey({ fix: 'rename-again', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } }),
    );
    await liveRun(fix, stopAfterPages(1));
    const store = new RunStateStore(fix.dir.path);
    const key = runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
    const state = store.read(key);
    store.write(key, { ...(state as NonNullable<typeof state>), journal: otherRun.journal as string });
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF725');
    expect(refused.message).toBe(
      `the journal ${otherRun.journal} named by the interrupted run's state does not belong to it (fix rename-again, not rename-status; another spec checksum; run ${otherState?.runId}, not ${state?.runId}); nothing was appended to it. Run without --resume to start over with a journal of its own (rows already fixed are skipped)`,
    );
  });

  it('a journal cut short since the stop (an older copy put back): --resume is DF728 and writes nothing', async () => {
    const fix = ordersFix(cancelledOrders(7));
    const copy = fix.dir.file('journal-after-page-1');
    const stop = new AbortController();
    let pages = 0;
    const stopped = await liveRun(fix, {
      signal: stop.signal,
      // The journal is copied between pages: nothing of page 2 may be under way then.
      overlapPages: false,
      onEvent: (e) => {
        if (e.type !== 'page') return;
        if (++pages === 1) copyFileSync(stateOf(fix)?.journal as string, copy);
        else stop.abort();
      },
    });
    copyFileSync(copy, stopped.journal as string);
    const afterStop = dumpSqlite(fix.db);
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF728');
    expect(dumpSqlite(fix.db)).toEqual(afterStop);
  });

  it('a journal cut short while the state file is behind too (as after a crash): the checkpoint in the database still makes --resume DF728', async () => {
    const fix = ordersFix(cancelledOrders(7));
    const journalCopy = fix.dir.file('journal-after-page-1');
    const stateCopy = fix.dir.file('state-after-page-1');
    const statePath = statePathOf(fix);
    // Page 1's state (the first page's is always saved) and journal, as a crash right after
    // page 2 committed would leave them once the state file is a second behind.
    const stopped = await runKeepingPage1State(fix, 2, stateCopy, () => copyFileSync(stateOf(fix)?.journal as string, journalCopy));
    expect(stopped.summary).toMatchObject({ total: 4, updated: 4 });
    copyFileSync(stateCopy, statePath);
    copyFileSync(journalCopy, stopped.journal as string);
    expect(stateOf(fix)).toMatchObject({ pages: 1, journalSeq: 2 });
    const afterStop = dumpSqlite(fix.db);
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF728');
    expect(refused.message).toContain('holds writes up to 2, but the interrupted run had journaled 4 by its last checkpoint');
    expect(dumpSqlite(fix.db)).toEqual(afterStop);
  });

  it('a resume that went on from the database’s checkpoint remembers it: the database restored from an older copy later is DF726', async () => {
    // Orders 1–8 need the fix (pages 1–4 of 2), 9–12 are done already (pages 5–6 write nothing).
    const rows = cancelledOrders(12).map((o) => (o.id > 8 ? { ...o, status: 'cancelled' } : o));
    const fix = ordersFix(rows);
    const statePath = statePathOf(fix);
    const stateAfterPage1 = fix.dir.file('state-after-page-1');
    const dbAfterPage2 = fix.dir.file('db-after-page-2');
    await runKeepingPage1State(fix, 4, stateAfterPage1, undefined, (page) => {
      if (page === 2) copyFileSync(fix.db, dbAfterPage2);
    });
    // As a crash after page 4 leaves it when the state file was last saved after page 1.
    copyFileSync(stateAfterPage1, statePath);
    // The resume goes on from the database's page 4; its pages write nothing, and it stops.
    const second = await liveRun(fix, { resume: true, ...stopAfterPages(1) });
    expect(second.resumed).toMatchObject({ pages: 4, records: 8 });
    expect(stateOf(fix)).toMatchObject({ status: 'interrupted', pages: 5, committedPages: 4 });
    // The database is put back to a copy taken after page 2: its checkpoint is older than what
    // the run committed, and resuming from the state's position would skip orders 5–8.
    copyFileSync(dbAfterPage2, fix.db);
    const restored = dumpSqlite(fix.db);
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF726');
    expect(refused.message).toContain('it holds an older one (2 page(s))');
    expect(dumpSqlite(fix.db)).toEqual(restored);
  });

  it('the journal deleted since the stop: --resume is refused (DF724) and writes nothing', async () => {
    const fix = ordersFix(cancelledOrders(5));
    const stopped = await liveRun(fix, stopAfterPages(1));
    rmSync(stopped.journal as string);
    const afterStop = dumpSqlite(fix.db);
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF724');
    expect(dumpSqlite(fix.db)).toEqual(afterStop);
  });

  it('the database replaced by a copy taken before the run: --resume is DF726; a new run then fixes every row', async () => {
    const fix = ordersFix(cancelledOrders(5));
    const copy = fix.dir.file('copy.db');
    copyFileSync(fix.db, copy);
    await liveRun(fix, stopAfterPages(1));
    const state = stateOf(fix);
    copyFileSync(copy, fix.db);
    const refused = await refusal(liveRun(fix, { resume: true }));
    expect(refused.code).toBe('DF726');
    expect(refused.message).toBe(
      `sqlite ${fix.db} does not hold the checkpoint this run committed to it (1 page(s), run ${state?.runId}, started ${state?.startedAt}): the database was replaced or restored, or another run started over on it since. Resuming would skip rows it never fixed. Run without --resume to start over (rows already fixed are skipped)`,
    );
    expect(statuses(fix.db)).toEqual(Array(5).fill('canceled'));
    expect((await liveRun(fix)).summary).toMatchObject({ total: 5, updated: 5 });
  });

  it('the database restored from a copy taken mid-run (an older checkpoint of the run): --resume is DF726', async () => {
    // A run stopped after two pages, with a copy of the database taken after its first.
    const fix2 = ordersFix(cancelledOrders(7));
    const copy = fix2.dir.file('copy.db');
    const stop = new AbortController();
    let seen = 0;
    await liveRun(fix2, {
      signal: stop.signal,
      // The database is copied between pages: nothing of page 2 may be under way then.
      overlapPages: false,
      onEvent: (e) => {
        if (e.type !== 'page') return;
        seen++;
        if (seen === 1) copyFileSync(fix2.db, copy);
        if (seen === 2) stop.abort();
      },
    });
    const stopped = stateOf(fix2);
    expect(stopped).toMatchObject({ status: 'interrupted', pages: 2 });
    copyFileSync(copy, fix2.db);
    const refused = await refusal(liveRun(fix2, { resume: true }));
    expect(refused.code).toBe('DF726');
    expect(refused.message).toBe(
      `sqlite ${fix2.db} does not hold the checkpoint this run committed to it (2 page(s), run ${stopped?.runId}, started ${stopped?.startedAt}): it holds an older one (1 page(s)), so the database was restored from a copy since. Resuming would skip rows it never fixed. Run without --resume to start over (rows already fixed are skipped)`,
    );
  });
});

describe('what a run records and remembers', () => {
  it.each([
    ['named by the source record', '', '{{ ord.user_id }}'],
    ['found by a lookup', '\nlookups:\n  user: { table: users, get: { id: "{{ ord.user_id }}" } }', '{{ user.id }}'],
  ])(
    'a resumed run remembers the targets the stopped one updated (%s): a later record of one is duplicate_target',
    async (_how, lookups, userKey) => {
      const dir = tmp();
      const db = dir.file('shop.db');
      // Orders 1 and 5 both update user 1; every other order its own user.
      createDb(
        db,
        `CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, n INTEGER); CREATE TABLE users (id INTEGER PRIMARY KEY, last_order INTEGER);
       INSERT INTO orders VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40), (5, 1, 50);
       INSERT INTO users VALUES (1, NULL), (2, NULL), (3, NULL), (4, NULL);`,
      );
      const fix = libraryFix(
        dir,
        db,
        `name: last-order
target: { sqlite: { path: "\${DB}" } }
source: { as: ord, table: orders, pageSize: 2 }${lookups}
update:
  table: users
  key: { id: "${userKey}" }
  set: { last_order: "{{ ord.n }}" }
  overwrite: true
`,
      );
      await liveRun(fix, stopAfterPages(1));
      const resumed = await liveRun(fix, { resume: true });
      expect(resumed.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, reasons: { duplicate_target: 1 } });
      expect(sqliteAll(db, 'SELECT id, last_order FROM users ORDER BY id')).toEqual([
        { id: 1, last_order: 10 },
        { id: 2, last_order: 20 },
        { id: 3, last_order: 30 },
        { id: 4, last_order: 40 },
      ]);
    },
  );

  it("the spec's run.limit is the run's limit, kept by its resume; paths are recorded absolute", async () => {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, cancelledOrders(7));
    const fix = libraryFix(dir, db, `${renameSpec(2)}run: { limit: 5 }\n`);
    // The spec named relative to the working directory, as a person types it.
    await liveRun(fix, { ...stopAfterPages(1), specFile: 'fix.yaml', journalPath: 'my.journal.jsonl' });
    expect(stateOf(fix)).toMatchObject({ limit: 5, specFile: fix.spec, journal: dir.file('my.journal.jsonl'), status: 'interrupted' });
    const resumed = await liveRun(fix, { resume: true, specFile: 'fix.yaml' });
    expect(resumed.journal).toBe(dir.file('my.journal.jsonl'));
    expect(resumed.summary).toMatchObject({ total: 3, updated: 3 });
    expect(statuses(db)).toEqual([...Array(5).fill('cancelled'), 'canceled', 'canceled']);
  });

  it('a new run after a finished one starts without a note; a dry run through the library writes nothing', async () => {
    const fix = ordersFix(cancelledOrders(3));
    await liveRun(fix);
    const notes: string[] = [];
    const second = await liveRun(fix, { onNote: (t) => notes.push(t) });
    expect(notes).toEqual([`journal ${second.journal} (undo with: datafix undo ${second.journal})`]);
    const fresh = ordersFix(cancelledOrders(3));
    const before = dumpSqlite(fresh.db);
    const dry = await liveRun(fresh, { dryRun: true });
    expect(dry.summary).toMatchObject({ dryRun: true, total: 3, updated: 3 });
    expect(dry.journal).toBeUndefined();
    expect(dumpSqlite(fresh.db)).toEqual(before);
    expect(stateOf(fresh)).toBeUndefined();
  });

  it('a run stopped before its first page: --resume starts from the first page and fixes every row', async () => {
    const fix = ordersFix(cancelledOrders(5));
    const stop = new AbortController();
    stop.abort();
    await liveRun(fix, { signal: stop.signal });
    expect(stateOf(fix)).toMatchObject({ status: 'interrupted', pages: 0, committedPages: 0 });
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.summary).toMatchObject({ total: 5, updated: 5 });
    expect(statuses(fix.db)).toEqual(Array(5).fill('cancelled'));
  });

  it('a new run after an undone one starts without a note about an unfinished run', async () => {
    const fix = ordersFix(cancelledOrders(3));
    const first = await liveRun(fix, stopAfterPages(1));
    await undoJournal(first.journal as string, { dryRun: false });
    recordUndo(fix.dir.path, first.journal as string, (await openJournal(first.journal as string)).header, 'done');
    const notes: string[] = [];
    const second = await liveRun(fix, { onNote: (t) => notes.push(t) });
    expect(notes).toEqual([`journal ${second.journal} (undo with: datafix undo ${second.journal})`]);
  });

  it('resumes from the checkpoint in the database when the state file lost its last page', async () => {
    const fix = ordersFix(cancelledOrders(7));
    const stateFile = statePathOf(fix);
    const saved = fix.dir.file('state-after-page-1.json');
    await runKeepingPage1State(fix, 2, saved);
    // As a kill between the database's commit of page 2 and the state file's save leaves it.
    copyFileSync(saved, stateFile);
    expect(stateOf(fix)).toMatchObject({ pages: 1, records: 2 });
    const [row] = sqliteAll<{ cursor: string }>(fix.db, 'SELECT cursor FROM _datafix_checkpoints');
    const committedAt = (JSON.parse(row?.cursor ?? '{}') as { at?: string }).at;
    expect(committedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const resumed = await liveRun(fix, { resume: true });
    // It goes on from the database's checkpoint, says when that was committed, and does not
    // pass off the state's counts of page 1 as those of the pages it resumes after.
    expect(resumed.resumed).toEqual({
      startedAt: stateOf(fix)?.startedAt,
      savedAt: committedAt,
      pages: 2,
      records: 4,
      journal: resumed.journal,
    });
    expect(resumed.summary).toMatchObject({ total: 3, updated: 3 });
    expect(resumed.wholeRun).toEqual({ total: 7 });
    expect(statuses(fix.db)).toEqual(Array(7).fill('cancelled'));
    // The finished run's state and `datafix runs`: 7 records read, outcomes of the whole run unknown.
    expect(stateOf(fix)).toMatchObject({ status: 'done', records: 7 });
    expect(stateOf(fix)?.counts).toBeUndefined();
    const [listed] = await listRuns(fix.dir.path);
    expect(listed).toMatchObject({ status: 'done', read: 7 });
    expect(listed?.summary).toBeUndefined();
  });

  it('a page whose writes fill its last batch exactly still commits its checkpoint: the stopped run resumes after it', async () => {
    // Two writes a page, two a batch: each page's last batch ends exactly at its last write.
    const fix = ordersFix(cancelledOrders(6), `${renameSpec(2)}run: { batchSize: 2 }\n`);
    const stopped = await liveRun(fix, stopAfterPages(1));
    expect(stopped.summary).toMatchObject({ total: 2, updated: 2 });
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.resumed).toMatchObject({ pages: 1, records: 2 });
    expect(resumed.summary).toMatchObject({ total: 4, updated: 4 });
    expect(statuses(fix.db)).toEqual(Array(6).fill('cancelled'));
  });

  it('a run whose lock another process took over (unlock --force, then a run) stops before its next write (DF713)', async () => {
    const fix = ordersFix(cancelledOrders(6));
    const target = loadPlan(fix.spec, { env: fix.env }).target;
    let other: TargetLock | undefined;
    const err = await rejectionOf(
      liveRun(fix, {
        onEvent: (e) => {
          if (e.type !== 'writing' || e.index !== 1 || other) return;
          // As page 2 starts (page 1 may still be under way): the lock is cleared by force and
          // another process's run takes it.
          other = takeLockOver(target, fix.spec);
        },
      }),
    );
    other?.release();
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).code).toBe('DF713');
    // Page 1 only: nothing of page 2 was journaled or written.
    expect(statuses(fix.db)).toEqual([...Array(2).fill('cancelled'), ...Array(4).fill('canceled')]);
  });

  it.each([false, true])(
    'a checkpoint save that fails stops the run: no page after those under way is written (pages overlap: %s)',
    async (overlapPages) => {
      saveStateEveryPage();
      const fix = ordersFix(cancelledOrders(6));
      const key = runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
      let pages = 0;
      const err = await liveRun(fix, {
        overlapPages,
        onEvent: async (e) => {
          if (e.type !== 'page' || ++pages > 1) return;
          // Once page 1's save has landed, the next save's temp file cannot be created: a
          // directory has its name.
          await vi.waitFor(() => expect(stateOf(fix)).toMatchObject({ pages: 1 }));
          mkdirSync(fix.dir.file('.datafix', 'runs', `${key}.state.json.tmp`));
        },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as NodeJS.ErrnoException | undefined)?.code).toBe('EISDIR');
      // Pages 1 and 2 were written (page 2's save is the one that failed). One page at a time,
      // page 3 never was; where pages overlap, it may have been under way already, and finished.
      const twoPages = [...Array(4).fill('cancelled'), 'canceled', 'canceled'];
      const threePages = Array(6).fill('cancelled');
      expect(overlapPages ? [twoPages, threePages] : [twoPages]).toContainEqual(statuses(fix.db));
    },
  );

  it('a run that fails while its last page’s state is still being saved leaves a readable interrupted state; --resume fixes the rest', async () => {
    const fix = ordersFix(cancelledOrders(6));
    const key = runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
    // The page event comes right after page 1's save has started in the background: failing
    // there is any failure before the next page's writes (a page read, a lookup, a listener).
    const err = await liveRun(fix, {
      // The listener fails between pages: nothing of page 2 may be under way then.
      overlapPages: false,
      onEvent: (e) => {
        if (e.type === 'page') throw new Error('the listener failed');
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error | undefined)?.message).toBe('the listener failed');
    // Time for any save still under way to land (it must already have, before the error came).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(new RunStateStore(fix.dir.path).read(key)).toMatchObject({ status: 'interrupted', pages: 1, records: 2 });
    expect(statuses(fix.db)).toEqual([...Array(2).fill('cancelled'), ...Array(4).fill('canceled')]);
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.resumed).toMatchObject({ pages: 1, records: 2 });
    expect(resumed.summary).toMatchObject({ total: 4, updated: 4 });
    expect(statuses(fix.db)).toEqual(Array(6).fill('cancelled'));
  });
  it('a run that finished every page but could not write its end line resumes from the first page', async () => {
    saveStateEveryPage();
    const fix = ordersFix(cancelledOrders(5));
    const key = runKey({ fix: 'rename-status', target: { backend: 'sqlite', path: fix.db, busyTimeoutMs: 5000 } });
    const store = new RunStateStore(fix.dir.path);
    // The disk fills once the state says the last page is done: the journal's end line fails.
    const write = journalFs.writeSync;
    /** The state as saved, or undefined while a save is landing (a read can meet its rename). */
    const saved = () => {
      try {
        return store.read(key);
      } catch {
        return undefined;
      }
    };
    vi.spyOn(journalFs, 'writeSync').mockImplementation(((...args: Parameters<typeof write>) => {
      if (saved()?.cursor === null) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return (write as (...a: Parameters<typeof write>) => number)(...args);
    }) as typeof write);
    const err = await refusal(liveRun(fix), 'config');
    vi.restoreAllMocks();
    expect(err.code).toBe('DF704');
    expect(stateOf(fix)).toMatchObject({ status: 'interrupted', cursor: null, pages: 3, records: 5 });
    expect(statuses(fix.db)).toEqual(Array(5).fill('cancelled'));

    const notes: string[] = [];
    const resumed = await liveRun(fix, { resume: true, onNote: (t) => notes.push(t) });
    expect(notes).toContain(`resuming from the first page: sqlite ${fix.db} holds no checkpoint of this run`);
    expect(resumed.summary).toMatchObject({ total: 5, updated: 0, skipped: 5, reasons: { already_renamed: 5 } });
    expect(resumed.resumed).toMatchObject({ pages: 0, records: 0 });
    expect(resumed.wholeRun).toEqual({ total: 5, updated: 0, skipped: 5, failed: 0, reasons: { already_renamed: 5 } });
    expect(stateOf(fix)?.status).toBe('done');
  });
});

describe('how often the state file is saved', () => {
  const dynamo = useDynaliteTables('saves');

  it('a SQLite run, whose position commits with each page, saves it at most once a second; it ends exact', async () => {
    const fix = ordersFix(cancelledOrders(60));
    const saves = vi.spyOn(RunStateStore.prototype, 'writeInBackground');
    const started = performance.now();
    const result = await liveRun(fix);
    const seconds = (performance.now() - started) / 1000;
    // 30 pages of 2: the first page's state is saved, then one a second at most.
    expect(result.summary).toMatchObject({ total: 60, updated: 60 });
    expect(saves.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(saves.mock.calls.length).toBeLessThanOrEqual(1 + Math.floor(seconds));
    expect(saves.mock.calls[0]?.[1]).toMatchObject({ pages: 1, records: 2 });
    expect(stateOf(fix)).toMatchObject({ status: 'done', pages: 30, records: 60, cursor: null, journalSeq: 60 });
  });

  it('a DynamoDB run, whose position is only in the state file, saves it after every page', async () => {
    const table = await dynamo.table(Array.from({ length: 12 }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i })));
    const fix = dynamoFix(
      tmp(),
      dynamo.endpoint(),
      table,
      `name: mark
target: { dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 } }
source: { as: item, scan: { pageSize: 4 } }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set: { copyOfN: "{{ item.n }}" }
`,
    );
    const saves = vi.spyOn(RunStateStore.prototype, 'writeInBackground');
    const result = await liveRun(fix);
    expect(result.summary).toMatchObject({ total: 12, updated: 12 });
    // Three pages of 4, and the empty last page that says the scan is done.
    expect(saves.mock.calls.map(([, state]) => [state.pages, state.records])).toEqual([
      [1, 4],
      [2, 8],
      [3, 12],
      [4, 12],
    ]);
  });
});

describe('--segment', () => {
  const dynamo = useDynaliteTables('segments');
  const SCAN = `name: mark
target: { dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 } }
source: { as: item, scan: { pageSize: 4 } }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set: { copyOfN: "{{ item.n }}" }
`;
  const items = (count: number) => Array.from({ length: count }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i }));

  it('splits a DynamoDB scan: two segments run side by side, each with its own state, and together fix every item', async () => {
    const table = await dynamo.table(items(20));
    const fix = dynamoFix(tmp(), dynamo.endpoint(), table, SCAN);
    const target = { backend: 'dynamodb' as const, table, region: 'us-east-1', endpoint: dynamo.endpoint() };
    const [a, b] = await Promise.all([0, 1].map((index) => liveRun(fix, { segment: { index, total: 2 } })));
    expect((a?.summary.total ?? 0) + (b?.summary.total ?? 0)).toBe(20);
    expect((a?.summary.updated ?? 0) + (b?.summary.updated ?? 0)).toBe(20);
    for (const index of [0, 1]) {
      const state = new RunStateStore(fix.dir.path).read(runKey({ fix: 'mark', target, segment: { index, total: 2 } }));
      expect(state).toMatchObject({ status: 'done', segment: { index, total: 2 } });
    }
    expect((await scanRaw(dynamo.endpoint(), table)).filter((i) => i.copyOfN?.N === i.n?.N)).toHaveLength(20);
  });

  it('a segment of another fix split the same way is kept off the table while one segment runs (DF710); it writes nothing', async () => {
    const table = await dynamo.table(items(8));
    const fix = dynamoFix(tmp(), dynamo.endpoint(), table, SCAN);
    const other = dynamoFix(tmp(), dynamo.endpoint(), table, SCAN.replace('name: mark', 'name: other').replace('copyOfN', 'otherN'));
    let holding: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Segment 0 of 2 of `mark` stops after its first page, holding its lock, until released.
    const first = liveRun(fix, {
      segment: { index: 0, total: 2 },
      onEvent: async (e) => {
        if (e.type !== 'page') return;
        holding();
        await released;
      },
    });
    await held;
    const err = await liveRun(other, { segment: { index: 1, total: 2 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    release();
    await first;
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).code).toBe('DF710');
    expect((await scanRaw(dynamo.endpoint(), table)).filter((i) => i.otherN !== undefined)).toEqual([]);
  });

  it('is refused (DF727) on a DynamoDB query, naming the source', async () => {
    const table = await dynamo.table(items(2));
    const fix = dynamoFix(
      tmp(),
      dynamo.endpoint(),
      table,
      SCAN.replace('source: { as: item, scan: { pageSize: 4 } }', 'source: { as: item, query: { key: { PK: "ITEM#0" } } }'),
    );
    const refused = await refusal(liveRun(fix, { segment: { index: 0, total: 2 } }));
    expect(refused.code).toBe('DF727');
    expect(refused.message).toBe(
      '--segment splits a DynamoDB scan, but mark reads with source.query, which cannot be split: every process would handle every record. Run it once, without --segment and --total-segments',
    );
  });

  it('is refused (DF727) on a SQLite source, live or dry, before anything is written', async () => {
    const fix = ordersFix(cancelledOrders(3));
    const before = dumpSqlite(fix.db);
    for (const dryRun of [false, true]) {
      const refused = await refusal(liveRun(fix, { dryRun, segment: { index: 0, total: 2 } }));
      expect(refused.code).toBe('DF727');
      expect(refused.message).toBe(
        '--segment splits a DynamoDB scan, but rename-status reads a SQLite table, which cannot be split: every process would handle every record. Run it once, without --segment and --total-segments',
      );
    }
    expect(dumpSqlite(fix.db)).toEqual(before);
  });
});

describe('resume on DynamoDB (dynalite)', () => {
  const dynamo = useDynaliteTables('resume');

  const SPEC = `name: mark
target: { dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 } }
source: { as: item, scan: { pageSize: 4 } }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set: { copyOfN: "{{ item.n }}" }
`;

  async function markTable(count: number): Promise<LibraryFix & { table: string }> {
    const table = await dynamo.table(Array.from({ length: count }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i })));
    return { ...dynamoFix(tmp(), dynamo.endpoint(), table, SPEC), table };
  }

  const marked = async (table: string) => (await scanRaw(dynamo.endpoint(), table)).filter((i) => i.copyOfN !== undefined).length;

  it('a stopped scan resumes from its cursor: the pages done are not read again', async () => {
    const t = await markTable(10);
    const stopped = await liveRun(t, stopAfterPages(1));
    expect(stopped.summary).toMatchObject({ total: 4, updated: 4 });
    const resumed = await liveRun(t, { resume: true });
    expect(resumed.summary).toMatchObject({ total: 6, updated: 6 });
    expect(resumed.wholeRun).toMatchObject({ total: 10, updated: 10 });
    expect(await marked(t.table)).toBe(10);
  });

  it('a new run says nothing of resuming; a resume stopped before its first page keeps its place', async () => {
    const t = await markTable(10);
    const notes: string[] = [];
    const stopped = await liveRun(t, { ...stopAfterPages(1), onNote: (n) => notes.push(n) });
    expect(stopped.resumed).toBeUndefined();
    expect(notes).toEqual([`journal ${stopped.journal} (undo with: datafix undo ${stopped.journal})`]);
    const stop = new AbortController();
    stop.abort();
    const idle = await liveRun(t, { resume: true, signal: stop.signal });
    expect(idle.summary).toMatchObject({ total: 0 });
    const resumed = await liveRun(t, { resume: true });
    expect(resumed.summary).toMatchObject({ total: 6, updated: 6 });
    // The whole run's counts survive the idle resume.
    expect(resumed.wholeRun).toEqual({ total: 10, updated: 10, skipped: 0, failed: 0, reasons: {} });
    expect(await marked(t.table)).toBe(10);
  });

  it('a stopped query on sort keys beyond 2^53 resumes after the exact last key: no item is skipped or read twice', async () => {
    const table = 'resume-exact-keys';
    await createNumericSortKeyTable(dynamo.endpoint(), table);
    // Consecutive integers from 2^53: a double holds only every second one, so the last key of
    // the first page (2^53 + 1) rounded through one would name the key before it.
    const keys = Array.from({ length: 6 }, (_, i) => (9007199254740992n + BigInt(i)).toString());
    await seedRawItems(
      dynamo.endpoint(),
      table,
      keys.map((k) => ({ PK: { S: 'BIG' }, SK: { N: k } })),
    );
    const fix = dynamoFix(
      tmp(),
      dynamo.endpoint(),
      table,
      SPEC.replace('source: { as: item, scan: { pageSize: 4 } }', 'source: { as: item, query: { key: { PK: BIG }, pageSize: 2 } }').replace(
        'set: { copyOfN: "{{ item.n }}" }',
        'set: { copyOfSK: "{{ item.SK }}" }',
      ),
    );
    const stopped = await liveRun(fix, stopAfterPages(1));
    expect(stopped.summary).toMatchObject({ total: 2, updated: 2 });
    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.summary).toMatchObject({ total: 4, updated: 4, skipped: 0, failed: 0 });
    const items = await scanRaw(dynamo.endpoint(), table);
    expect(items.map((i) => [i.SK?.N, i.copyOfSK?.N]).sort()).toEqual(keys.map((k) => [k, k]));
  });

  it('the table deleted and created again since the stop: --resume is DF726 and writes nothing', async () => {
    const t = await markTable(10);
    await liveRun(t, stopAfterPages(1));
    const state = new RunStateStore(t.dir.path).read(
      runKey({ fix: 'mark', target: { backend: 'dynamodb', table: t.table, region: 'us-east-1', endpoint: dynamo.endpoint() } }),
    );
    expect(state?.targetInstance).toEqual(expect.any(String));
    const client = rawClient(dynamo.endpoint());
    try {
      await client.send(new DeleteTableCommand({ TableName: t.table }));
    } finally {
      client.destroy();
    }
    await createMediaTable(dynamo.endpoint(), t.table);
    await seedItems(dynamo.endpoint(), t.table, [{ PK: 'ITEM#0', SK: 'METADATA', n: 0 }]);
    const refused = await refusal(liveRun(t, { resume: true }));
    expect(refused.code).toBe('DF726');
    expect(refused.message).toMatch(
      new RegExp(
        `^dynamodb ${regexText(t.table)} \\(${regexText(dynamo.endpoint())}\\) is not the table the interrupted run wrote \\(it was ${regexText(state?.targetInstance as string)}, it is \\S+ now\\): it was deleted and created again, or restored from a backup, since\\. Resuming would skip items it never fixed\\. Run without --resume to start over \\(items already fixed are skipped\\)$`,
      ),
    );
    expect(await marked(t.table)).toBe(0);
  });
});

function regexText(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
