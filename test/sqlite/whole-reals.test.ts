/**
 * A whole number written as REAL (text such as `7e+15` or `5.0`, or a REAL read from another
 * column) goes into a NUMERIC or INTEGER column as the INTEGER SQLite stores there, wherever a
 * 64-bit integer holds it, also from 2^51 up, where SQLite's CAST keeps it REAL: the dry run shows
 * what the live run stores. The expected values are written here; what SQLite stored is read
 * back with its storage class through an independent connection.
 */
import { describe, expect, it } from 'vitest';
import { ExactNumber } from '../../src/plan/values.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

// [text written, what the dry run shows, SQLite's typeof and text of what it stores]
const CASES: [string, unknown, string, string][] = [
  ['5.0', 5, 'integer', '5'],
  ['-0.0', 0, 'integer', '0'],
  ['1e3', 1000, 'integer', '1000'],
  ['2.5', 2.5, 'real', '2.5'],
  ['3e15', 3000000000000000, 'integer', '3000000000000000'],
  ['7e+15', 7000000000000000, 'integer', '7000000000000000'],
  ['7000000000000000.0', 7000000000000000, 'integer', '7000000000000000'],
  ['9.2e18', 9200000000000000000n, 'integer', '9200000000000000000'],
  // 2^63 and beyond: no 64-bit integer holds it, so it stays REAL.
  ['9.3e18', new ExactNumber('9300000000000000000.0'), 'real', '9.3e+18'],
  ['9223372036854775808.0', new ExactNumber('9223372036854776000.0'), 'real', '9.2233720368547758e+18'],
  ['-9223372036854775808.0', new ExactNumber('-9223372036854776000.0'), 'real', '-9.2233720368547758e+18'],
];

describe.each(['NUMERIC', 'INTEGER'])('whole REALs into a %s column', (type) => {
  it('the dry run shows the INTEGER the live run stores; a fractional REAL stays REAL', async () => {
    const db = tmp().file('reals.db');
    createDb(
      db,
      `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n ${type}); ` +
        `INSERT INTO t (id, v) VALUES ${CASES.map(([v], i) => `(${i + 1}, '${v}')`).join(', ')}`,
    );
    const spec = `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ row.v }}" }\n`;
    const dry = await runYaml(spec, { dryRun: true });
    expect(dry.records.map((r) => r.changes?.[0]?.after)).toEqual(CASES.map(([, shown]) => shown));
    const live = await runYaml(spec);
    expect(live.summary).toMatchObject({ total: CASES.length, updated: CASES.length, failed: 0 });
    expect(query(db, 'SELECT typeof(n) AS k, CAST(n AS TEXT) AS s FROM t ORDER BY id')).toEqual(CASES.map(([, , k, s]) => ({ k, s })));
  });

  it('a whole REAL read from a REAL column is stored as that INTEGER too', async () => {
    const db = tmp().file('copy.db');
    createDb(db, `CREATE TABLE t (id INTEGER PRIMARY KEY, r REAL, n ${type}); INSERT INTO t (id, r) VALUES (1, 7e15), (2, 5.0), (3, 0.5)`);
    const spec = `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ row.r }}" }\n`;
    const dry = await runYaml(spec, { dryRun: true });
    expect(dry.records.map((r) => r.changes?.[0]?.after)).toEqual([7000000000000000, 5, 0.5]);
    await runYaml(spec);
    expect(query(db, 'SELECT typeof(n) AS k, CAST(n AS TEXT) AS s FROM t ORDER BY id')).toEqual([
      { k: 'integer', s: '7000000000000000' },
      { k: 'integer', s: '5' },
      { k: 'real', s: '0.5' },
    ]);
  });
});

describe('-0.0 into a REAL column', () => {
  it('is shown as the 0.0 SQLite stores there: a whole REAL is kept as an integer on disk', async () => {
    const db = tmp().file('zero.db');
    createDb(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL); INSERT INTO t (id, v) VALUES (1, '-0.0')");
    const spec = `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { r: "{{ row.v }}" }\n`;
    const dry = await runYaml(spec, { dryRun: true });
    expect(dry.records[0]?.changes?.map((c) => [c.field, c.after])).toEqual([['r', new ExactNumber('0.0')]]);
    await runYaml(spec);
    expect(query(db, 'SELECT quote(r) AS r, typeof(r) AS tr FROM t')).toEqual([{ r: '0.0', tr: 'real' }]);
    const [row] = query<{ r: number }>(db, 'SELECT r FROM t');
    expect(Object.is(row?.r, 0)).toBe(true);
  });
});
