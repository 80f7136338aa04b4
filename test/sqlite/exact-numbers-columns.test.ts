/**
 * A SQLite source is read for the columns the fix uses (its references, the fields it writes and
 * the primary key), not the whole row: a virtual generated column that SQLite cannot compute for
 * some row (abs() of the smallest 64-bit integer: "integer overflow") does not stop a fix that
 * never reads it, whether it updates the source row itself or deletes rows of another table by a
 * key read from the source or from a lookup. Outcomes and rows afterwards are written down; rows
 * are read back through an independent connection.
 */
import { expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** A database whose table `t` has a generated column `g` that SQLite cannot compute for row 1. */
function dbWithBadGeneratedColumn(): string {
  const db = tmp().file('t.db');
  createDb(
    db,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT, user_id INTEGER, n INTEGER);
     CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);
     INSERT INTO users VALUES (7, 'a@example.com'), (8, 'b@example.com'), (9, 'c@example.com');
     INSERT INTO t (id, name, user_id, n) VALUES (1, 'a', 7, -9223372036854775808), (2, 'b', 8, 3);
     ALTER TABLE t ADD COLUMN g INTEGER AS (abs(n));`,
  );
  // SQLite itself fails on reading g of row 1.
  expect(() => query(db, 'SELECT g FROM t WHERE id = 1')).toThrow('integer overflow');
  return db;
}

it('an update of the source row itself reads only the columns it uses, not a generated column SQLite cannot compute', async () => {
  const db = dbWithBadGeneratedColumn();
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\n` +
      'skip:\n  - { reason: overflowing, when: { equals: { row.name: a } } }\n' +
      'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.name }}" }\n',
  );
  expect([...run.outcomes]).toEqual([
    [1, { outcome: 'skipped', reason: 'overflowing' }],
    [2, { outcome: 'updated' }],
  ]);
  expect(query(db, 'SELECT id, note FROM t ORDER BY id')).toEqual([
    { id: 1, note: null },
    { id: 2, note: 'b' },
  ]);
});

it('a delete from another table by a key read from the source row reads only that column of the source', async () => {
  const db = dbWithBadGeneratedColumn();
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\ndelete:\n  table: users\n  key: { id: "{{ row.user_id }}" }\n`,
  );
  expect([...run.outcomes]).toEqual([
    [1, { outcome: 'updated' }],
    [2, { outcome: 'updated' }],
  ]);
  expect(query(db, 'SELECT id FROM users ORDER BY id')).toEqual([{ id: 9 }]);
});

it("a delete of a lookup's row reads only the source columns the lookup's key uses", async () => {
  const db = dbWithBadGeneratedColumn();
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\n` +
      'lookups:\n  user: { table: users, get: { id: "{{ row.user_id }}" } }\n' +
      'delete:\n  table: users\n  key: { id: "{{ user.id }}" }\n',
  );
  expect([...run.outcomes]).toEqual([
    [1, { outcome: 'updated' }],
    [2, { outcome: 'updated' }],
  ]);
  expect(query(db, 'SELECT id FROM users ORDER BY id')).toEqual([{ id: 9 }]);
});
