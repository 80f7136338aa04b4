/**
 * Column names SQLite allows but datafix never writes into SQL (a space, a quote), and names that
 * differ only in case: such a column is still read, compared by its own collation and refused by
 * the same checks as any other. Expected rows and refusals are written here; SQLite's own
 * answers (its `=` under the column's collation) are asked through an independent connection.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('odd.db');
  createDb(path, sql);
  return path;
}

describe('a source column whose name is not a plain identifier', () => {
  const DB = `CREATE TABLE people (id INTEGER PRIMARY KEY, "full name" TEXT, note TEXT);
    INSERT INTO people VALUES (1, 'x', NULL), (2, 'y', NULL)`;

  it('is read: a skip rule on it skips the row it names, and nothing else', async () => {
    const db = newDb(DB);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: people }\n` +
        `skip:\n  - reason: named_x\n    when: { equals: { 'row["full name"]': x } }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
    );
    expect([...run.outcomes]).toEqual([
      [1, { outcome: 'skipped', reason: 'named_x' }],
      [2, { outcome: 'updated' }],
    ]);
    expect(query(db, 'SELECT id, note FROM people ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: 'n' },
    ]);
  });

  it('is copied by a template', async () => {
    const db = newDb(DB);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: people }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: '{{ row["full name"] }}' }\n`,
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0 });
    expect(query(db, 'SELECT id, note FROM people ORDER BY id')).toEqual([
      { id: 1, note: 'x' },
      { id: 2, note: 'y' },
    ]);
  });
});

describe('a NOCASE column whose name is not a plain identifier', () => {
  it('a skip rule compares it as SQLite does: case folded', async () => {
    const db = newDb(`CREATE TABLE people (id INTEGER PRIMARY KEY, "full name" TEXT COLLATE NOCASE);
      INSERT INTO people VALUES (1, 'x'), (2, 'y'), (3, 'X');
      CREATE TABLE orders (id INTEGER PRIMARY KEY, person_id INTEGER, note TEXT);
      INSERT INTO orders VALUES (10, 1, NULL), (20, 2, NULL), (30, 3, NULL)`);
    // SQLite's own answer: the people whose name is 'x' under the column's collation.
    expect(query(db, `SELECT id FROM people WHERE "full name" = 'x' ORDER BY id`)).toEqual([{ id: 1 }, { id: 3 }]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: o, table: orders }\n` +
        'lookups:\n  p: { table: people, get: { id: "{{ o.person_id }}" } }\n' +
        `skip:\n  - reason: named_x\n    when: { equals: { 'p["full name"]': x } }\n` +
        'update:\n  key: { id: "{{ o.id }}" }\n  set: { note: n }\n',
      { dryRun: true },
    );
    expect([...run.outcomes]).toEqual([
      [10, { outcome: 'skipped', reason: 'named_x' }],
      [20, { outcome: 'updated' }],
      [30, { outcome: 'skipped', reason: 'named_x' }],
    ]);
  });
});

describe('checks of names', () => {
  it('an update key naming a column the table lacks is DF405, not an internal error; nothing is written', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL)');
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { idd: "{{ row.id }}" }\n  set: { note: x }\n`,
      ),
    );
    expect([err.code, err.message]).toEqual(['DF405', 'update.key: table `items` has no column `idd`; it has id, note']);
    expect(query(db, 'SELECT note FROM items')).toEqual([{ note: null }]);
  });

  it('a column named RowId in a table without a primary key hides the rowid: a lookup by rowid is refused, nothing is written', async () => {
    const db = newDb(`CREATE TABLE src (id INTEGER PRIMARY KEY, ref TEXT, note TEXT); INSERT INTO src VALUES (1, 'x', NULL);
      CREATE TABLE legacy (RowId TEXT, v TEXT); INSERT INTO legacy VALUES ('x', 'first'), ('x', 'second')`);
    // Offered as a key, the rowid would let the lookup take one of the two rows without a word.
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  l: { table: legacy, get: { rowid: "{{ s.ref }}" } }\n` +
          'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ l.v }}" }\n',
      ),
    );
    expect([err.code, err.message]).toEqual(['DF405', 'lookups.l.get: table `legacy` has no column `rowid`; it has RowId, v']);
    expect(query(db, 'SELECT note FROM src')).toEqual([{ note: null }]);
  });
});

describe('a column named __proto__', () => {
  it('a delete from its table is DF422 before anything is read, dry run and live; an update of another column works', async () => {
    const db = tmp().file('proto.db');
    createDb(db, `CREATE TABLE plain (id INTEGER PRIMARY KEY, x TEXT, "__proto__" BLOB); INSERT INTO plain VALUES (1, NULL, x'0a0b');`);
    const del = `name: del\n${sqliteTarget(db)}source: { as: r, table: plain }\ndelete:\n  key: { id: "{{ r.id }}" }\n`;
    for (const dryRun of [true, false]) {
      const err = await refusal(runYaml(del, { dryRun }));
      expect(err.code).toBe('DF422');
      expect(err.message).toMatch(/`plain` has a column named `__proto__`/);
    }
    expect(query(db, 'SELECT id, quote("__proto__") AS p FROM plain')).toEqual([{ id: 1, p: "X'0A0B'" }]);
    const run = await runYaml(
      `name: set\n${sqliteTarget(db)}source: { as: r, table: plain }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { x: filled }\n`,
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1 });
    expect(query(db, 'SELECT x, quote("__proto__") AS p FROM plain')).toEqual([{ x: 'filled', p: "X'0A0B'" }]);
  });
});
