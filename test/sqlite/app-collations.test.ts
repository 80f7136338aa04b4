/**
 * Columns whose collation only the application defines (made here with Python's sqlite3 module,
 * which can register one; better-sqlite3 cannot): a fix that would need SQLite to compare or
 * order such a column is refused at check with DF413, naming the column, before anything is read
 * or written, also where the column is never compared by the fix itself.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createAppDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** A database whose script uses the collation `app_order`, as its application would make it. */
function appDb(sql: string): string {
  const db = tmp().file('app.db');
  createAppDb(db, sql);
  return db;
}

describe('a lookup of several rows in a table with a column of the application collation', () => {
  it('is DF413 at check, naming that column, though the fix never compares it; nothing is written', async () => {
    const db = appDb(`CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, NULL);
      CREATE TABLE media (id INTEGER PRIMARY KEY, item_id INTEGER, owner TEXT COLLATE app_order, url TEXT);
      INSERT INTO media VALUES (10, 1, NULL, 'u-none'), (11, 1, 'o', 'u1');`);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
          'lookups:\n  m: { table: media, where: { equals: { item_id: "{{ row.id }}" } }, max: 5 }\n' +
          'skip:\n  - reason: no_media\n    when: { missing: "m[0]" }\n' +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m[0].url }}" }\n',
      ),
    );
    expect([err.code, err.message]).toEqual([
      'DF413',
      "lookups.m.where: SQLite cannot compare column `owner` of `media` here (no such collation sequence: app_order): its collation is the application's own, and datafix knows only SQLite's (BINARY, NOCASE, RTRIM)",
    ]);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: null },
    ]);
  });
});

describe('a skip rule on a column of the application collation whose name is not a plain identifier', () => {
  it('is DF413 at check, as for any other name', async () => {
    const db = appDb(`CREATE TABLE people (id INTEGER PRIMARY KEY, "full name" TEXT COLLATE app_order, note TEXT);
      INSERT INTO people VALUES (1, 'x', NULL);`);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: people }\n` +
          `skip:\n  - reason: named_x\n    when: { equals: { 'row["full name"]': x } }\n` +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
      ),
    );
    expect([err.code, err.message]).toEqual([
      'DF413',
      "skip.0.when: SQLite cannot compare column `full name` of `people` here (no such collation sequence: app_order): its collation is the application's own, and datafix knows only SQLite's (BINARY, NOCASE, RTRIM)",
    ]);
    expect(query(db, 'SELECT note FROM people')).toEqual([{ note: null }]);
  });
});

describe('an untyped column whose name is not a plain identifier, beside a column of the application collation', () => {
  it('does not stop a fix of the table: its affinity stays that of no type (SQLite cannot be asked with the other column there)', async () => {
    const db = appDb(`CREATE TABLE t (id INTEGER PRIMARY KEY, "odd col", other TEXT COLLATE app_order, note TEXT);
      INSERT INTO t VALUES (1, NULL, 'o', NULL);`);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: r, table: t }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { note: hello }\n`,
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    expect(query(db, 'SELECT note FROM t')).toEqual([{ note: 'hello' }]);
  });
});
