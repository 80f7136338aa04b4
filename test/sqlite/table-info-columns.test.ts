/**
 * What datafix learns of a SQLite table's columns from the table itself, as a user sees it: a
 * STORED generated column is refused as one (DF405), not left to a failing write; a NOT NULL
 * generated column and an INTEGER PRIMARY KEY NOT NULL (the rowid, which SQLite assigns) are no
 * columns a `create` must write; a primary key that is not the rowid may hold NULL, and a source
 * with such a row is refused before anything is written (DF416); in a STRICT table an ANY column
 * keeps text as text, while an INTEGER column takes numeric text as the number SQLite stores.
 * Rows are read back through an independent connection.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('columns.db');
  createDb(path, sql);
  return path;
}

/** The code, message and spec location of a refusal. */
async function refused(promise: Promise<unknown>) {
  const err = await refusal(promise);
  return { code: err.code, message: err.message, at: err.diagnostics.map((d) => d.path) };
}

describe('generated columns', () => {
  it('a STORED generated column under update.set is refused as generated (DF405), and nothing is written', async () => {
    const path = newDb(
      'CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER, total INTEGER GENERATED ALWAYS AS (price * 2) STORED); INSERT INTO items (id, price) VALUES (1, 5)',
    );
    expect(
      await refused(
        runYaml(
          `name: t\n${sqliteTarget(path)}source: { as: i, table: items }\nupdate:\n  key: { id: "{{ i.id }}" }\n  set: { total: 3 }\n  overwrite: true\n`,
        ),
      ),
    ).toEqual({
      code: 'DF405',
      message:
        'update.set.total: `total` of `items` is a generated column; SQLite computes it from other columns, so it cannot be written. Write the columns it is computed from',
      at: ['/update/set/total'],
    });
    expect(query(path, 'SELECT id, price, total FROM items')).toEqual([{ id: 1, price: 5, total: 10 }]);
  });

  it('a NOT NULL generated column is not one create.set must write: the rows are created and SQLite computes it', async () => {
    const path = newDb(
      'CREATE TABLE prices (id INTEGER PRIMARY KEY, price INTEGER); INSERT INTO prices VALUES (1, 5), (2, 7); ' +
        'CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER NOT NULL, total INTEGER GENERATED ALWAYS AS (price * 2) VIRTUAL NOT NULL)',
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(path)}source: { as: p, table: prices }\n` +
        'create:\n  table: items\n  key: { id: "{{ p.id }}" }\n  set: { price: "{{ p.price }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0, failed: 0 });
    expect(query(path, 'SELECT id, price, total FROM items ORDER BY id')).toEqual([
      { id: 1, price: 5, total: 10 },
      { id: 2, price: 7, total: 14 },
    ]);
  });
});

describe('the primary key and the rowid', () => {
  it('an INTEGER PRIMARY KEY NOT NULL is the rowid: a create keyed by another unique column need not write it, SQLite assigns it', async () => {
    const path = newDb(
      "CREATE TABLE signups (email TEXT PRIMARY KEY, name TEXT); INSERT INTO signups VALUES ('a@x', 'A'), ('b@x', 'B'); " +
        'CREATE TABLE users (id INTEGER PRIMARY KEY NOT NULL, email TEXT NOT NULL UNIQUE, name TEXT)',
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(path)}source: { as: s, table: signups }\n` +
        'create:\n  table: users\n  key: { email: "{{ s.email }}" }\n  set: { name: "{{ s.name }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0, failed: 0 });
    expect(query(path, 'SELECT id, email, name FROM users ORDER BY id')).toEqual([
      { id: 1, email: 'a@x', name: 'A' },
      { id: 2, email: 'b@x', name: 'B' },
    ]);
  });

  it('a TEXT primary key (not the rowid) holding NULL in a selected row is refused before reading (DF416), also with another index on the table', async () => {
    const path = newDb(
      "CREATE TABLE codes (id TEXT PRIMARY KEY, v TEXT); CREATE INDEX codes_v ON codes(v); INSERT INTO codes VALUES (NULL, 'x'), ('a', NULL)",
    );
    expect(
      await refused(
        runYaml(
          `name: t\n${sqliteTarget(path)}source: { as: c, table: codes }\nupdate:\n  key: { id: "{{ c.id }}" }\n  set: { v: "filled" }\n`,
        ),
      ),
    ).toEqual({
      code: 'DF416',
      message:
        'source.table: rows of `codes` that the source selects hold NULL in primary key column `id` (SQLite allows it in a table with a rowid); datafix reads in primary key order and cannot page past them. Add `where: { notNull: id }` to the source, or fix those rows first',
      at: ['/source/table'],
    });
    expect(query(path, 'SELECT id, v FROM codes ORDER BY v')).toEqual([
      { id: 'a', v: null },
      { id: null, v: 'x' },
    ]);
  });
});

describe('a STRICT table', () => {
  it('an ANY column keeps the text "12" as text, as SQLite itself does', async () => {
    const path = newDb(
      'CREATE TABLE vals (id INTEGER PRIMARY KEY, v ANY, w ANY) STRICT; INSERT INTO vals (id) VALUES (1); ' +
        // SQLite's own answer for the same text into the same column.
        "INSERT INTO vals (id, w) VALUES (2, '12')",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(path)}source: { as: r, table: vals, where: { equals: { id: 1 } } }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: "12" }\n`,
    );
    expect(run.records.map((r) => [r.outcome, r.changes?.map((c) => [c.field, c.before, c.after])])).toEqual([
      ['updated', [['v', null, '12']]],
    ]);
    expect(query(path, 'SELECT id, v, typeof(v) AS t FROM vals WHERE id = 1')).toEqual([{ id: 1, v: '12', t: 'text' }]);
    expect(query(path, 'SELECT w, typeof(w) AS t FROM vals WHERE id = 2')).toEqual([{ w: '12', t: 'text' }]);
  });

  it('an INTEGER column takes the text "12" as the integer 12: a row holding 12 is no change, another is written 12', async () => {
    const path = newDb('CREATE TABLE vals (id INTEGER PRIMARY KEY, n INTEGER) STRICT; INSERT INTO vals VALUES (1, 12), (2, 7)');
    const run = await runYaml(
      `name: t\n${sqliteTarget(path)}source: { as: r, table: vals }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { n: "12" }\n  overwrite: true\n`,
    );
    expect(run.records.map((r) => [r.key.id, r.outcome, r.reason, r.changes?.map((c) => [c.field, c.before, c.after])])).toEqual([
      [1, 'skipped', 'no_change', undefined],
      [2, 'updated', undefined, [['n', 7, 12]]],
    ]);
    expect(query(path, 'SELECT id, n, typeof(n) AS t FROM vals ORDER BY id')).toEqual([
      { id: 1, n: 12, t: 'integer' },
      { id: 2, n: 12, t: 'integer' },
    ]);
  });
});
