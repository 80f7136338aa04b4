/**
 * Pages that overlap: a SQLite run whose every write goes to its own source row writes on a
 * connection of its own in a worker thread, while the next page is read and computed. Checked
 * here: which runs overlap, that values cross the thread exactly (the database and undo agree
 * with a run of one page at a time, byte for byte), that a failed page stops the one queued
 * behind it, and that an exiting process waits for the batch the worker holds.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { CHECKPOINT_TABLE, createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { Adapter } from '../../src/adapters/types.js';
import { loadPlan } from '../../src/api.js';
import type { DatafixError } from '../../src/errors.js';
import { RunStateStore, runKey } from '../../src/safety/state.js';
import { undoJournal } from '../../src/safety/undo.js';
import { useTempDirs } from '../helpers/tmp.js';
import { libraryFix, liveRun, renameSpec, saveStateEveryPage } from '../safety/library-runs.js';
import { compileYaml, createDb, openDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** Every row of `v` with each column's storage class and exact SQL literal (REAL digits, BLOB bytes). */
const exactRows = (db: string) =>
  query(db, 'SELECT id, typeof(src) AS ts, quote(src) AS src, typeof(dst) AS td, quote(dst) AS dst, note FROM v ORDER BY id');

/** Values that lose something when carried carelessly: 64-bit integers, whole and signed REALs, text beyond the BMP, bytes. */
const TRICKY = [
  '9223372036854775807',
  '-9223372036854775808',
  '9007199254740993',
  '1e20',
  '-0.0',
  '7.0',
  '0.1',
  "'𝄞 text'",
  "x'00ff10'",
  "'9007199254740993'",
  'NULL',
  '3',
];

function trickyDb(path: string): void {
  // No declared type: BLOB affinity stores each value as given, so nothing is converted on the way in.
  const rows = TRICKY.map((v, i) => `(${i + 1}, ${v}, ${TRICKY[(i + 5) % TRICKY.length]}, 'n${i}')`);
  createDb(path, `CREATE TABLE v (id INTEGER PRIMARY KEY, src, dst, note TEXT); INSERT INTO v VALUES ${rows.join(', ')};`);
}

const COPY_SPEC = `name: copy-src
target: { sqlite: { path: "\${DB}" } }
source: { as: r, table: v, pageSize: 2 }
update:
  table: v
  key: { id: "{{ r.id }}" }
  set: { dst: "{{ r.src }}", note: "copied {{ r.id }}" }
  overwrite: true
`;

describe('pages that overlap on SQLite', () => {
  it('write the same bytes as one page at a time, and undo restores every value exactly', async () => {
    const results: { after: unknown[]; undone: unknown[] }[] = [];
    let original: unknown[] = [];
    for (const overlapPages of [true, false]) {
      const dir = tmp();
      const db = dir.file('v.db');
      trickyDb(db);
      original = exactRows(db);
      const fix = libraryFix(dir, db, COPY_SPEC);
      const run = await liveRun(fix, { overlapPages });
      expect(run.summary).toMatchObject({ total: TRICKY.length, failed: 0 });
      const after = exactRows(db);
      const undo = await undoJournal(run.journal as string, { dryRun: false });
      expect(undo).toMatchObject({ conflicts: 0, failed: 0 });
      results.push({ after, undone: exactRows(db) });
    }
    const [overlapped, onePage] = results as [(typeof results)[0], (typeof results)[0]];
    expect(overlapped.after).toEqual(onePage.after);
    // What the copy wrote is the source value, storage class and digits alike (a NULL source
    // renders as missing, which is never written: that row keeps its value).
    for (const row of overlapped.after as { ts: string; src: string; td: string; dst: string }[]) {
      if (row.ts !== 'null') expect({ td: row.td, dst: row.dst }).toEqual({ td: row.ts, dst: row.src });
    }
    expect(overlapped.undone).toEqual(original);
    expect(onePage.undone).toEqual(original);
  });

  it('a page that fails at COMMIT stops the page handed over behind it: DF418 is the error, and no later row is written', async () => {
    const dir = tmp();
    const db = dir.file('fk.db');
    // Order 2 points at a user that does not exist: its page fails when SQLite checks the
    // deferred key at COMMIT, after page 2 may already be in the worker's queue.
    createDb(
      db,
      "CREATE TABLE users (code TEXT PRIMARY KEY); INSERT INTO users VALUES ('A'); CREATE TABLE orders (id INTEGER PRIMARY KEY, want TEXT, user_code TEXT REFERENCES users (code) DEFERRABLE INITIALLY DEFERRED); INSERT INTO orders VALUES (1, 'A', NULL), (2, 'ZZZ', NULL), (3, 'A', NULL), (4, 'A', NULL), (5, 'A', NULL), (6, 'A', NULL);",
    );
    const spec = `name: fk\n${sqliteTarget(db)}source: { as: o, table: orders, pageSize: 2 }\nupdate:\n  key: { id: "{{ o.id }}" }\n  set: { user_code: "{{ o.want }}" }\n`;
    const err = await runYaml(spec).then(
      () => undefined,
      (e: unknown) => e as DatafixError,
    );
    expect(err).toMatchObject({ code: 'DF418' });
    expect(query(db, 'SELECT id FROM orders WHERE user_code IS NOT NULL')).toEqual([]);
  });

  it('only where no page can read what the page before writes: its own row, by its own key, no trigger, no lookup, one batch a page', async () => {
    const dir = tmp();
    const db = dir.file('w.db');
    createDb(
      db,
      'CREATE TABLE t (id INTEGER PRIMARY KEY, other INTEGER, v TEXT); INSERT INTO t VALUES (1, 2, NULL), (2, 1, NULL); CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT);',
    );
    const head = `name: own\n${sqliteTarget(db)}source: { as: r, table: t }\n`;
    const asks = async (spec: string, readonly = false) => {
      const plan = compileYaml(spec);
      if (plan.target.backend !== 'sqlite') throw new Error('sqlite only');
      const adapter = createSqliteAdapter(plan.target, { readonly });
      try {
        await adapter.check(plan);
        return adapter.overlapWrites?.(plan);
      } finally {
        await adapter.close();
      }
    };
    const own = `${head}update:\n  key: { id: "{{ r.id }}" }\n  set: { v: x }\n`;
    expect(await asks(own)).toBe(true);
    // A dry run writes nothing.
    expect(await asks(own, true)).toBe(false);
    // Another row of the same table, by a column that is not the key read.
    expect(await asks(`${head}update:\n  key: { id: "{{ r.other }}" }\n  set: { v: x }\n`)).toBe(false);
    // Another table.
    expect(await asks(`${head}update:\n  table: u\n  key: { id: "{{ r.id }}" }\n  set: { v: x }\n`)).toBe(false);
    // A trigger may write any row, of this page or the next.
    const withTrigger = dir.file('trigger.db');
    createDb(
      withTrigger,
      'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, NULL), (2, NULL); CREATE TRIGGER next AFTER UPDATE ON t BEGIN UPDATE t SET v = NEW.v WHERE id = NEW.id + 1 AND v IS NULL; END;',
    );
    expect(await asks(own.replace(JSON.stringify(db), JSON.stringify(withTrigger)))).toBe(false);

    // The engine does not even ask for a fix that looks something up.
    let asked = 0;
    const counting = (a: Adapter): Adapter => ({
      ...a,
      readPages: a.readPages.bind(a),
      overlapWrites: (plan) => {
        asked++;
        return a.overlapWrites?.(plan) ?? false;
      },
    });
    await runYaml(
      `${head}lookups:\n  peer: { table: t, get: { id: "{{ r.other }}" } }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: "{{ peer.id }}" }\n`,
      {
        wrap: counting,
      },
    );
    expect(asked).toBe(0);
    // Nor for pages of several batches: only a page's last batch can be under way with the next page's.
    await runYaml(own, { wrap: counting, batchSize: 1, pageSize: 2 });
    expect(asked).toBe(0);
    await runYaml(own, { wrap: counting });
    expect(asked).toBe(1);
  });

  it('the state file never says a page is committed before the database holds its checkpoint', async () => {
    saveStateEveryPage();
    const dir = tmp();
    const db = dir.file('orders.db');
    // Rows of 60 KB: each page's COMMIT takes long enough that when a page's state lands, the
    // page handed over behind it is still being written.
    const big = 'x'.repeat(60_000);
    createDb(
      db,
      `CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, note TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 480) INSERT INTO orders SELECT i, 'canceled', '${big}' FROM n;`,
    );
    const fix = libraryFix(dir, db, renameSpec(40));
    const plan = loadPlan(fix.spec, { env: fix.env });
    const key = runKey({ fix: plan.fix, target: plan.target });
    /** The pages the checkpoint row in the database holds (0 before the first). */
    const inDatabase = () => {
      if (query(db, 'SELECT 1 FROM sqlite_master WHERE name = ?', [CHECKPOINT_TABLE]).length === 0) return 0;
      const rows = query<{ cursor: string }>(db, `SELECT cursor FROM ${CHECKPOINT_TABLE}`);
      return rows[0] ? (JSON.parse(rows[0].cursor) as { pages: number }).pages : 0;
    };
    const seen: [inState: number, inDatabase: number][] = [];
    await liveRun(fix, {
      onEvent: async (e) => {
        if (e.type !== 'page') return;
        await vi.waitFor(() => expect(new RunStateStore(dir.path).read(key)?.pages).toBe(e.index + 1), { interval: 1 });
        // The state first, then the database, whose checkpoint only moves on meanwhile.
        const inState = new RunStateStore(dir.path).read(key)?.committedPages ?? 0;
        seen.push([inState, inDatabase()]);
      },
    });
    expect(seen).toHaveLength(12);
    // A crash at any of these moments resumes from the database's checkpoint, never DF726 ("does
    // not hold the checkpoint this run committed to it").
    expect(seen.filter(([inState, held]) => inState > held)).toEqual([]);
  });

  it("another application's writes are not starved: once one is seen, the lock is left free between batches", async () => {
    const dir = tmp();
    const db = dir.file('shared.db');
    const rows = Array.from({ length: 30_000 }, (_, i) => `(${i + 1}, 'canceled', 'note ${i + 1}')`);
    createDb(
      db,
      `CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, note TEXT); INSERT INTO orders VALUES ${rows.join(',')}; CREATE TABLE app_log (id INTEGER PRIMARY KEY, hits INTEGER, at TEXT); INSERT INTO app_log VALUES (1, 0, NULL);`,
    );
    const fix = libraryFix(dir, db, renameSpec(200));
    const script = fileURLToPath(new URL('../helpers/app-writer.mjs', import.meta.url));
    // The application writes every 20 ms and gives up on a write after 500 ms. Batches back to
    // back keep the lock held nearly all the time: its busy handler, polling at growing
    // intervals, then keeps finding it held.
    const app = spawn(process.execPath, [script, db, '2500', '500', '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    app.stdout.on('data', (d) => {
      out += String(d);
    });
    const appDone = new Promise((resolve) => app.on('exit', resolve));
    const run = await liveRun(fix);
    await appDone;
    const seen = JSON.parse(out) as { writes: number; failures: number; maxWaitMs: number };
    expect(run.summary).toMatchObject({ total: 30_000, updated: 30_000 });
    expect(seen.failures, JSON.stringify(seen)).toBe(0);
    expect(seen.writes).toBeGreaterThan(0);
  });

  it('a process that exits while the worker holds a batch waits for that batch to commit', async () => {
    const dir = tmp();
    const db = dir.file('exit.db');
    const rows = Array.from({ length: 60 }, (_, i) => `(${i + 1}, 'old')`);
    createDb(db, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES ${rows.join(', ')};`);
    const spec = dir.write(
      'fix.yaml',
      `name: mark\ntarget: { sqlite: { path: ${JSON.stringify(db)}, busyTimeoutMs: 20000 } }\nsource: { as: r, table: t, pageSize: 2 }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: new }\n  overwrite: true\n`,
    );
    const script = fileURLToPath(new URL('../helpers/exit-mid-batch.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, spec, dir.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    let exitedEarly = false;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    void exited.then(() => {
      exitedEarly = true;
    });
    const saidExiting = new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('exiting') && resolve()));
    // Once page 1 is committed (the write thread is up), another connection takes the write
    // lock: the next batch waits for it in the write thread, and the process exits meanwhile.
    const other = openDb(db);
    for (;;) {
      const done = query<{ n: number }>(db, "SELECT count(*) AS n FROM t WHERE v = 'new'")[0]?.n ?? 0;
      if (done >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    other.exec('BEGIN IMMEDIATE');
    const heldAt = query<{ n: number }>(db, "SELECT count(*) AS n FROM t WHERE v = 'new'")[0]?.n ?? 0;
    await saidExiting;
    // A while after it called process.exit, it must still be there, waiting for its batch.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waited = !exitedEarly;
    other.exec('ROLLBACK');
    other.close();
    const code = await exited;
    expect(code, stderr).toBe(7);
    expect(waited, 'the process waited for its batch instead of exiting at once').toBe(true);
    // The batch that waited committed whole before the process ended (one page more than when
    // the lock was taken); the one queued behind it was not run. Nothing half-done is left.
    const marked = query<{ v: string }>(db, 'SELECT v FROM t ORDER BY id').map((r) => r.v);
    expect(marked).toEqual([...Array(heldAt + 2).fill('new'), ...Array(60 - heldAt - 2).fill('old')]);
    expect(existsSync(`${db}-journal`)).toBe(false);
  });
});
