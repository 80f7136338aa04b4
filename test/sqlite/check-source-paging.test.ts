/**
 * check() refuses, before any row is read or written, a fix whose source SQLite cannot page by
 * key: a table without a primary key whose column named rowid hides the rowid (DF419), an update
 * that rewrites the key the source is read in order of, through set or touch (DF419), and a
 * source that selects rows holding NULL in a primary key column (DF416, by the source's `where`
 * as SQLite compares it). What pages fine is not refused: a table with a primary key and a
 * column named rowid, writing a column named like the source's key in another table, and a
 * create that writes the key of the new row.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('paging.db');
  createDb(path, sql);
  return path;
}

const spec = (db: string, body: string) => `name: t\n${sqliteTarget(db)}${body}`;

/** What check() refused, as a user sees it: code, category and where in the spec. */
const where = (err: { code: string; category: string; diagnostics: readonly { path?: string }[] }) => ({
  code: err.code,
  category: err.category,
  paths: err.diagnostics.map((d) => d.path),
});

describe('rowid', () => {
  it('a table without a primary key whose column is named rowid is DF419 at source.table, saying why and what to do', async () => {
    const db = newDb("CREATE TABLE t (rowid INTEGER, name TEXT UNIQUE, v TEXT); INSERT INTO t VALUES (1, 'a', NULL), (1, 'b', NULL)");
    const err = await refusal(
      runYaml(spec(db, 'source: { as: r, table: t }\nupdate:\n  key: { name: "{{ r.name }}" }\n  set: { v: x }\n')),
    );
    expect(where(err)).toEqual({ code: 'DF419', category: 'config', paths: ['/source/table'] });
    expect(err.message).toBe(
      "source.table: `t` has no primary key and a column named rowid, which hides SQLite's rowid; datafix reads a table in primary key (or rowid) order and cannot page this one. Give the table a primary key, or rename the column",
    );
    expect(query(db, 'SELECT name, v FROM t ORDER BY name')).toEqual([
      { name: 'a', v: null },
      { name: 'b', v: null },
    ]);
  });

  it('a table with a primary key and a column named rowid is paged by its key: every row is updated', async () => {
    const db = newDb("CREATE TABLE t (k TEXT PRIMARY KEY, rowid TEXT, v TEXT); INSERT INTO t VALUES ('b', 'r2', NULL), ('a', 'r1', NULL)");
    const run = await runYaml(
      spec(db, 'source: { as: r, table: t, pageSize: 1 }\nupdate:\n  key: { k: "{{ r.k }}" }\n  set: { v: "{{ r.rowid }}" }\n'),
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT k, v FROM t ORDER BY k')).toEqual([
      { k: 'a', v: 'r1' },
      { k: 'b', v: 'r2' },
    ]);
  });

  it('writing the rowid of a table without a primary key, the order its source is read in, is DF419 at update.set.rowid', async () => {
    const db = newDb("CREATE TABLE t (name TEXT UNIQUE, v INTEGER); INSERT INTO t VALUES ('a', 100), ('b', 200)");
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: r, table: t, pageSize: 1 }\nupdate:\n  key: { name: "{{ r.name }}" }\n  set: { rowid: "{{ r.v }}" }\n  overwrite: true\n',
        ),
      ),
    );
    expect(where(err)).toEqual({ code: 'DF419', category: 'config', paths: ['/update/set/rowid'] });
    expect(query(db, 'SELECT rowid AS r, name FROM t ORDER BY rowid')).toEqual([
      { r: 1, name: 'a' },
      { r: 2, name: 'b' },
    ]);
  });
});

describe('rewriting the primary key the source is read in order of', () => {
  const schema =
    "CREATE TABLE u (k TEXT PRIMARY KEY, email TEXT UNIQUE, note TEXT); INSERT INTO u VALUES ('a', 'a@x', NULL), ('b', 'b@x', NULL)";
  const unchanged = [
    { k: 'a', email: 'a@x', note: null },
    { k: 'b', email: 'b@x', note: null },
  ];

  it('through set, beside another field, is DF419 at update.set.<key>, saying why and what to do', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: r, table: u, pageSize: 1 }\nupdate:\n  key: { email: "{{ r.email }}" }\n  set: { note: n, k: "user_{{ r.k }}" }\n  overwrite: true\n',
        ),
      ),
    );
    expect(where(err)).toEqual({ code: 'DF419', category: 'config', paths: ['/update/set/k'] });
    expect(err.message).toBe(
      'update.set.k: `k` is the primary key datafix reads `u` in order of; rewriting it would move rows past the cursor to be read and rewritten again, without end. Write the new value to another column (and swap the columns in a later step), or change the key outside datafix',
    );
    expect(query(db, 'SELECT k, email, note FROM u ORDER BY k')).toEqual(unchanged);
  });

  it('through touch is DF419 at update.touch.<key>', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: r, table: u, pageSize: 1 }\nupdate:\n  key: { email: "{{ r.email }}" }\n  set: { note: n }\n  touch: { k: "user_{{ r.k }}" }\n',
        ),
      ),
    );
    expect(where(err)).toEqual({ code: 'DF419', category: 'config', paths: ['/update/touch/k'] });
    expect(query(db, 'SELECT k, email, note FROM u ORDER BY k')).toEqual(unchanged);
  });

  it("writing a column named like the source's key in another table is no rewrite: the run fills it", async () => {
    const db = newDb(
      "CREATE TABLE src (k TEXT PRIMARY KEY, dst_id INTEGER); INSERT INTO src VALUES ('a', 1), ('b', 2);" +
        'CREATE TABLE dst (id INTEGER PRIMARY KEY, k TEXT); INSERT INTO dst VALUES (1, NULL), (2, NULL);',
    );
    const run = await runYaml(
      spec(
        db,
        'source: { as: s, table: src, pageSize: 1 }\nupdate:\n  table: dst\n  key: { id: "{{ s.dst_id }}" }\n  set: { k: "{{ s.k }}" }\n',
      ),
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT id, k FROM dst ORDER BY id')).toEqual([
      { id: 1, k: 'a' },
      { id: 2, k: 'b' },
    ]);
  });

  it('a create into the source table that writes the new row its key is no rewrite: the row is created', async () => {
    const db = newDb(schema);
    const run = await runYaml(
      spec(
        db,
        'source: { as: r, table: u, where: { equals: { k: a } } }\ncreate:\n  key: { email: "{{ r.email }}.copy" }\n  set: { k: "{{ r.k }}2" }\n',
      ),
    );
    expect(run.summary).toMatchObject({ total: 1, action: 'create', updated: 1, failed: 0 });
    expect(query(db, 'SELECT k, email, note FROM u ORDER BY k')).toEqual([
      { k: 'a', email: 'a@x', note: null },
      { k: 'a2', email: 'a@x.copy', note: null },
      { k: 'b', email: 'b@x', note: null },
    ]);
  });
});

describe('NULL in a primary key column', () => {
  const nullKey = (table: string) =>
    `source.table: rows of \`${table}\` that the source selects hold NULL in primary key column \`b\` (SQLite allows it in a table with a rowid); datafix reads in primary key order and cannot page past them. Add \`where: { notNull: b }\` to the source, or fix those rows first`;

  it('a row after others in key order is DF416 before reading, naming only the key column that can hold NULL; nothing is written', async () => {
    const db = newDb(
      "CREATE TABLE n (a TEXT NOT NULL, b TEXT, note TEXT, PRIMARY KEY (a, b)); INSERT INTO n VALUES ('a', '1', NULL), ('b', '2', NULL), ('z', NULL, NULL)",
    );
    const err = await refusal(
      runYaml(
        spec(db, 'source: { as: r, table: n, pageSize: 1 }\nupdate:\n  key: { a: "{{ r.a }}", b: "{{ r.b }}" }\n  set: { note: n }\n'),
      ),
    );
    expect(where(err)).toEqual({ code: 'DF416', category: 'config', paths: ['/source/table'] });
    expect(err.message).toBe(nullKey('n'));
    expect(query(db, 'SELECT count(*) AS n FROM n WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it("the source's where selects the NULL key row as SQLite compares the column (NOCASE): DF416 before reading; nothing is written", async () => {
    const db = newDb(
      'CREATE TABLE n (a TEXT NOT NULL, b TEXT, name TEXT COLLATE NOCASE, note TEXT, PRIMARY KEY (a, b));' +
        " INSERT INTO n VALUES ('a', '1', 'Apple', NULL), ('b', '2', 'Avocado', NULL), ('m', NULL, 'berry', NULL), ('z', NULL, 'apricot', NULL)",
    );
    // SQLite itself: under the column's NOCASE, 'apricot' begins with 'A'.
    expect(query(db, "SELECT a FROM n WHERE substr(name, 1, 1) = 'A' COLLATE NOCASE ORDER BY a")).toEqual([
      { a: 'a' },
      { a: 'b' },
      { a: 'z' },
    ]);
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: r, table: n, pageSize: 1, where: { beginsWith: { name: A } } }\nupdate:\n  key: { a: "{{ r.a }}", b: "{{ r.b }}" }\n  set: { note: n }\n',
        ),
      ),
    );
    expect(where(err)).toEqual({ code: 'DF416', category: 'config', paths: ['/source/table'] });
    expect(err.message).toBe(nullKey('n'));
    expect(query(db, 'SELECT count(*) AS n FROM n WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });
});
