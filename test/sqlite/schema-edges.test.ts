/**
 * Schemas at the edges of what SQLite allows, each met by a fix that reads or writes the table:
 * a table named like the probe datafix asks SQLite with, a primary key whose name is not a plain
 * identifier, a quoted empty declared type, a generated column SQLite cannot compute for one row,
 * a foreign key's ON UPDATE action beside a create. Each ends in the rows SQLite holds afterwards
 * (read through an independent connection) or in a refusal with its code and whole message.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('edges.db');
  createDb(path, sql);
  return path;
}

/** A row n SQLite cannot compute abs() of: reading its generated column fails with "integer overflow". */
const OVERFLOW = '-9223372036854775808';

describe('a table named x or X, with a column whose name is not a plain identifier', () => {
  it('a lookup of several rows in it and a skip rule on that column run as SQLite compares', async () => {
    const db = newDb(`CREATE TABLE src (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO src VALUES (1, NULL), (2, NULL);
      CREATE TABLE x (id INTEGER PRIMARY KEY, sid INTEGER, "a b" TEXT COLLATE NOCASE); INSERT INTO x VALUES (10, 1, 'Keep'), (11, 2, 'go')`);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\n` +
        'lookups:\n  l: { table: x, where: { equals: { sid: "{{ s.id }}" } }, max: 5 }\n' +
        `skip:\n  - reason: kept\n    when: { equals: { 'l[0]["a b"]': keep } }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: done }\n',
    );
    expect([...run.outcomes]).toEqual([
      [1, { outcome: 'skipped', reason: 'kept' }],
      [2, { outcome: 'updated' }],
    ]);
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: 'done' },
    ]);
  });

  it('a UNIQUE index on that column does not stop a fix of the table', async () => {
    const db = newDb(`CREATE TABLE X (id INTEGER PRIMARY KEY, "e-mail" TEXT UNIQUE, note TEXT); INSERT INTO X VALUES (1, 'a@x', NULL)`);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: r, table: X }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { note: hello }\n`,
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    expect(query(db, 'SELECT note FROM X')).toEqual([{ note: 'hello' }]);
  });
});

describe('a primary key whose name is not a plain identifier', () => {
  it('in the source is DF205 at check: datafix pages by the key and names only plain identifiers', async () => {
    const db = newDb(`CREATE TABLE k ("my id" INTEGER PRIMARY KEY, note TEXT); INSERT INTO k VALUES (1, NULL)`);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: k }\nupdate:\n  key: { id: '{{ row["my id"] }}' }\n  table: k2\n  set: { note: x }\n`,
      ),
    );
    expect([err.code, err.message]).toEqual([
      'DF205',
      'source.table: the primary key column `my id` of `k` is not a plain identifier; datafix reads a table in the order of its primary key and names only plain identifiers in SQL. Rename the column',
    ]);
  });

  it('in the table of a lookup of several rows is DF205 at check', async () => {
    const db = newDb(`CREATE TABLE src (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO src VALUES (1, NULL);
      CREATE TABLE m ("m id" INTEGER PRIMARY KEY, sid INTEGER)`);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  l: { table: m, where: { equals: { sid: "{{ s.id }}" } }, max: 5 }\n` +
          'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ l }}" }\n',
      ),
    );
    expect([err.code, err.message]).toEqual([
      'DF205',
      'lookups.l.table: the primary key column `m id` of `m` is not a plain identifier; datafix returns the rows of a lookup of several rows in the order of its primary key and names only plain identifiers in SQL. Rename the column',
    ]);
    expect(query(db, 'SELECT note FROM src')).toEqual([{ note: null }]);
  });
});

describe('a quoted empty declared type (`v ""`), which SQLite gives NUMERIC affinity', () => {
  it('numeric text is shown and journaled as the number SQLite stores, and a rerun finds nothing to do', async () => {
    const db = newDb(`CREATE TABLE t (id INTEGER PRIMARY KEY, v "", w); INSERT INTO t (id) VALUES (1)`);
    const spec = `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { v: "0012", w: "0012" }\n  overwrite: true\n`;
    const dry = await runYaml(spec, { dryRun: true });
    expect(dry.records[0]?.changes?.map((c) => [c.field, c.after])).toEqual([
      ['v', 12],
      ['w', '0012'],
    ]);
    await runYaml(spec);
    expect(query(db, 'SELECT v, typeof(v) AS tv, w, typeof(w) AS tw FROM t')).toEqual([{ v: 12, tv: 'integer', w: '0012', tw: 'text' }]);
    const again = await runYaml(spec);
    expect([...again.outcomes]).toEqual([[1, { outcome: 'skipped', reason: 'no_change' }]]);
  });
});

describe('a generated column SQLite cannot compute for one row', () => {
  const SCHEMA = `CREATE TABLE t (id INTEGER PRIMARY KEY, "full name" TEXT, note TEXT, n INTEGER);
    INSERT INTO t VALUES (1, 'a', NULL, 5), (2, 'b', NULL, ${OVERFLOW}), (3, 'c', NULL, 3);
    ALTER TABLE t ADD COLUMN g INTEGER AS (abs(n))`;

  it('read with whole rows (a column whose name is not a plain identifier): DF421 names the table and the cause; rows before were written', async () => {
    const db = newDb(SCHEMA);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: t, pageSize: 1 }\n` +
          `skip:\n  - reason: is_c\n    when: { equals: { 'row["full name"]': c } }\n` +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
      ),
    );
    expect([err.code, err.category, err.message]).toEqual([
      'DF421',
      'config',
      'source.table: SQLite cannot read the next rows of `t` (integer overflow); a generated column it cannot compute for a row is the usual cause. Rows before were handled; fix that row (or read only the columns the fix needs), then --resume continues from the last checkpoint',
    ]);
    expect(query(db, 'SELECT id, note FROM t ORDER BY id')).toEqual([
      { id: 1, note: 'n' },
      { id: 2, note: null },
      { id: 3, note: null },
    ]);
  });

  it('in a lookup of several rows: the records of that key fail with key_invalid, the run goes on', async () => {
    const db = newDb(
      `${SCHEMA.replace(/"full name" TEXT, /, '')};
      CREATE TABLE src (id INTEGER PRIMARY KEY, ref INTEGER, note TEXT); INSERT INTO src VALUES (1, 1, NULL), (2, 2, NULL)`.replace(
        /VALUES \(1, 'a', NULL, 5\), \(2, 'b', NULL, (-?\d+)\), \(3, 'c', NULL, 3\)/,
        'VALUES (1, NULL, 5), (2, NULL, $1), (3, NULL, 3)',
      ),
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  l: { table: t, where: { equals: { id: "{{ s.ref }}" } }, max: 5 }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ l[0].g }}" }\n',
    );
    expect([...run.outcomes]).toEqual([
      [1, { outcome: 'updated' }],
      [2, { outcome: 'failed', reason: 'key_invalid', message: 'SQLite cannot look up the rows of this key: integer overflow' }],
    ]);
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: '5' },
      { id: 2, note: null },
    ]);
  });
});

describe('a create into a table another table references ON UPDATE CASCADE', () => {
  it('is not refused: an INSERT fires no ON UPDATE action; the row is created and nothing else changes', async () => {
    const db = newDb(`CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT UNIQUE); INSERT INTO p VALUES (1, 'a');
      CREATE TABLE c (id INTEGER PRIMARY KEY, code TEXT REFERENCES p (code) ON UPDATE CASCADE); INSERT INTO c VALUES (10, 'a');
      CREATE TABLE src (id INTEGER PRIMARY KEY, code TEXT); INSERT INTO src VALUES (2, 'b')`);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\ncreate:\n  table: p\n  key: { id: "{{ s.id }}" }\n  set: { code: "{{ s.code }}" }\n`,
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    expect(query(db, 'SELECT id, code FROM p ORDER BY id')).toEqual([
      { id: 1, code: 'a' },
      { id: 2, code: 'b' },
    ]);
    expect(query(db, 'SELECT id, code FROM c')).toEqual([{ id: 10, code: 'a' }]);
  });
});
