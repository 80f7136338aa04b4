/**
 * A SQLite column whose name is not a plain identifier (`full name`), read from a lookup's row as
 * `p["full name"]`: a skip rule comparing it with `equals` matches exactly the rows SQLite's own
 * `=` matches on that (BINARY) column, text by text, and only those records are skipped; the
 * others are written. SQLite itself gives the expected rows.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

describe('a skip rule on a lookup column with a quoted name', () => {
  it('skips the records whose looked-up value SQLite finds equal, and only those', async () => {
    const db = tmp().file('test.db');
    createDb(
      db,
      'CREATE TABLE people (id INTEGER PRIMARY KEY, "full name" TEXT); ' +
        "INSERT INTO people VALUES (1, 'x'), (2, 'y'), (3, 'X'), (4, 'x '); " +
        'CREATE TABLE orders (id INTEGER PRIMARY KEY, person_id INTEGER, note TEXT); ' +
        'INSERT INTO orders VALUES (10, 1, NULL), (20, 2, NULL), (30, 3, NULL), (40, 4, NULL)',
    );
    // SQLite's own `=` on the column: only person 1.
    expect(query(db, `SELECT id FROM people WHERE "full name" = 'x'`)).toEqual([{ id: 1 }]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: o, table: orders }\n` +
        'lookups:\n  p: { table: people, get: { id: "{{ o.person_id }}" } }\n' +
        `skip:\n  - { reason: named_x, when: { equals: { 'p["full name"]': x } } }\n` +
        'update:\n  key: { id: "{{ o.id }}" }\n  set: { note: n }\n',
    );
    expect(run.summary).toMatchObject({ total: 4, updated: 3, skipped: 1, failed: 0, reasons: { named_x: 1 } });
    expect(query(db, 'SELECT id, note FROM orders ORDER BY id')).toEqual([
      { id: 10, note: null },
      { id: 20, note: 'n' },
      { id: 30, note: 'n' },
      { id: 40, note: 'n' },
    ]);
  });
});
