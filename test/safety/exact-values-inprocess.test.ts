/**
 * The SQLite cases of `exact-values.test.ts`, run through the library in the test process
 * (`runPlanSafely`, `undoJournal`) so that the adapter code they rely on is the code under test
 * here, not the build the CLI runs: every storage class survives a live run and its undo byte for
 * byte, a value SQLite cannot keep fails its record alone with value_not_exact, a value goes into
 * each column as SQLite's type affinity stores it, and a key SQLite cannot address is a failure,
 * not a deletion. Expected tables are SQLite's own, read by storage class and bytes.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { undoJournal } from '../../src/safety/undo.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  AFFINITY_RAWS,
  affinityOracle,
  affinitySnapshot,
  createAffinityDb,
  createValuesDb,
  exactRows,
  SPEC,
  snapshot,
  VALUES,
} from './exact-values-data.js';
import { type LibraryFix, libraryFix, liveRun } from './library-runs.js';

const tmp = useTempDirs();

/** A database made by `sql` in a fresh temp dir, and a fix `specText` for it (`${DB}`). */
function fixFor(sql: string, specText: string) {
  const dir = tmp();
  const db = dir.file('t.db');
  const w = new Database(db);
  w.exec(sql);
  w.close();
  return libraryFix(dir, db, specText);
}

/** A live run of `fix`, and the message of every record that has one, in order. */
async function runWithMessages(fix: LibraryFix) {
  const messages: string[] = [];
  const result = await liveRun(fix, {
    onEvent: (e) => {
      if (e.type === 'record' && e.message) messages.push(e.message);
    },
  });
  return { result, messages };
}

describe('SQLite values of every storage class, through the library', () => {
  it('survive a live run and its undo byte for byte; text not valid UTF-8 fails alone with value_not_exact', async () => {
    const dir = tmp();
    const db = dir.file('values.db');
    createValuesDb(db);
    const before = snapshot(db);
    const fix = libraryFix(dir, db, SPEC.replace('${VALUES_DB}', '${DB}'));
    const nullRow = VALUES.indexOf('NULL');
    const result = await liveRun(fix);
    expect(result.summary).toMatchObject({
      total: VALUES.length + 1,
      updated: VALUES.length - 1,
      failed: 1,
      reasons: { value_not_exact: 1 },
    });
    // Each row now holds its v_new in v, with its storage class; the NULL one and row 100 are untouched.
    expect(snapshot(db)).toEqual(
      (before as Record<string, unknown>[]).map((r) => (r.id === 100 || r.id === nullRow ? r : { ...r, t_v: r.t_v_new, x_v: r.x_v_new })),
    );
    const undo = await undoJournal(result.journal as string, { dryRun: false });
    expect(undo).toMatchObject({ restored: VALUES.length - 1, conflicts: 0, failed: 0 });
    expect(snapshot(db)).toEqual(before);
  });

  it('a 19-digit id and -0.0 are written exactly; beyond 64 bits, beyond a double, more digits than a double holds, a number too small for a double (-1e-400) or a lone surrogate fails alone with value_not_exact', async () => {
    const fix = fixFor(
      `CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, ext);
       INSERT INTO t (id, raw) VALUES (1, '{"data":{"id":1091482500479000001}}'), (2, '{"data":{"id":1234567890123456789012345}}'),
         (3, '{"data":{"id":-9223372036854775808}}'), (4, '{"data":{"id":0.30000000000000004}}'), (5, '{"data":{"id":"\\ud800"}}'),
         (6, '{"data":{"id":1e400}}'), (7, '{"data":{"id":0.10000000000000000555}}'), (8, '{"data":{"id":-0.0}}'), (9, '{"data":{"id":-9223372036854775809}}'),
         (10, '{"data":{"id":9223372036854775808}}'), (11, '{"data":{"id":-1e-400}}'), (12, '{"data":{"id":-0e5}}');`,
      `name: json-ids
target: { sqlite: { path: "\${DB}" } }
source: { as: r, table: t }
extract:
  x: { from: r.raw, parse: json, first: ["$.data.id"] }
update:
  key: { id: "{{ r.id }}" }
  set: { ext: "{{ x }}" }
`,
    );
    const { result, messages } = await runWithMessages(fix);
    expect(result.summary).toMatchObject({ total: 12, updated: 5, failed: 7, reasons: { value_not_exact: 7 } });
    expect(messages).toEqual([
      'ext: 1234567890123456789012345 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
      'ext: the new text has a lone UTF-16 surrogate, which SQLite cannot store as given',
      'ext: 1e400 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
      'ext: 0.10000000000000000555 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
      'ext: -9223372036854775809 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
      'ext: 9223372036854775808 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
      'ext: -1e-400 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
    ]);
    expect(exactRows(fix.db, 'SELECT id, ext, typeof(ext) AS type FROM t ORDER BY id')).toEqual([
      { id: 1n, ext: 1091482500479000001n, type: 'integer' },
      { id: 2n, ext: null, type: 'null' },
      { id: 3n, ext: -9223372036854775808n, type: 'integer' },
      { id: 4n, ext: 0.30000000000000004, type: 'real' },
      { id: 5n, ext: null, type: 'null' },
      { id: 6n, ext: null, type: 'null' },
      { id: 7n, ext: null, type: 'null' },
      { id: 8n, ext: -0, type: 'real' },
      { id: 9n, ext: null, type: 'null' },
      { id: 10n, ext: null, type: 'null' },
      { id: 11n, ext: null, type: 'null' },
      { id: 12n, ext: -0, type: 'real' },
    ]);
  });
});

describe("SQLite's type affinity, through the library", () => {
  it('a value goes into each column as SQLite stores it there, and undo restores every row', async () => {
    const dir = tmp();
    const db = dir.file('affinity.db');
    createAffinityDb(db);
    const raws = AFFINITY_RAWS;
    const fix = libraryFix(
      dir,
      db,
      `name: affinity
target: { sqlite: { path: "\${DB}" } }
source: { as: row, table: t }
extract:
  v: { from: row.raw, parse: json, path: "$.v" }
update:
  key: { id: "{{ row.id }}" }
  set: { txt: "{{ v }}", num: "{{ v }}", r: "{{ v }}", nu: "{{ v }}", b: "{{ v }}" }
`,
    );
    const oracle = fix.dir.file('oracle.db');
    affinityOracle(fix.db, oracle);
    const snapshotOf = affinitySnapshot;
    const before = snapshotOf(fix.db);
    const result = await liveRun(fix);
    expect(result.summary).toMatchObject({ total: raws.length, updated: raws.length, failed: 0 });
    expect(snapshotOf(fix.db)).toEqual(snapshotOf(oracle));
    expect(await undoJournal(result.journal as string, { dryRun: false })).toMatchObject({ restored: raws.length, conflicts: 0 });
    expect(snapshotOf(fix.db)).toEqual(before);
  });
});

describe('a key SQLite cannot address, through the library', () => {
  it('a TEXT key that is not valid UTF-8 fails its record with value_not_exact, not skipped as deleted', async () => {
    const fix = fixFor(
      "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT, w TEXT); INSERT INTO t VALUES (CAST(x'61ff62' AS TEXT), 'x', NULL), ('ok', 'y', NULL)",
      'name: keys\ntarget: { sqlite: { path: "${DB}" } }\nsource: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { w: "{{ row.v }}" }\n',
    );
    const { result, messages } = await runWithMessages(fix);
    expect(result.summary).toMatchObject({ updated: 1, skipped: 0, failed: 1, reasons: { value_not_exact: 1 } });
    expect(messages).toEqual([
      "key column `id`: its stored text is not valid in the database's encoding (it reads back with U+FFFD), so SQLite cannot address the row by it",
    ]);
    expect(exactRows(fix.db, 'SELECT hex(id) AS id, w FROM t ORDER BY id')).toEqual([
      { id: '61FF62', w: null },
      { id: '6F6B', w: 'y' },
    ]);
  });
});
