/**
 * Numbers compared and keyed as SQLite compares them: a skip rule's `equals` on a number column
 * tells a negative number from its positive twin, and a create fix whose source names one new key
 * as the INTEGER 2^53 and as the REAL 2^53.0 (or as 0 and -0.0) creates that row once, the second
 * record being `duplicate_target`, because SQLite finds those keys equal
 * (https://www.sqlite.org/datatype3.html, 4.1: an INTEGER and a REAL compare by value). Expected
 * outcomes and rows are written down; rows are read back through an independent connection.
 */
import { expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

it('a skip rule equals -5 (or -2.5) skips only the rows holding that negative number, not its positive twin', async () => {
  const db = tmp().file('t.db');
  createDb(
    db,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, r REAL, mark TEXT);
     INSERT INTO t (id, n, r) VALUES (1, 5, 1), (2, -5, 1), (3, 1, 2.5), (4, 1, -2.5), (5, 1, 1);`,
  );
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\n` +
      'skip:\n  - { reason: minus_five, when: { equals: { row.n: -5 } } }\n  - { reason: minus_two_and_a_half, when: { equals: { row.r: -2.5 } } }\n' +
      'update:\n  key: { id: "{{ row.id }}" }\n  set: { mark: x }\n',
  );
  expect([...run.outcomes]).toEqual([
    [1, { outcome: 'updated' }],
    [2, { outcome: 'skipped', reason: 'minus_five' }],
    [3, { outcome: 'updated' }],
    [4, { outcome: 'skipped', reason: 'minus_two_and_a_half' }],
    [5, { outcome: 'updated' }],
  ]);
  expect(query(db, 'SELECT id, mark FROM t ORDER BY id')).toEqual([
    { id: 1, mark: 'x' },
    { id: 2, mark: null },
    { id: 3, mark: 'x' },
    { id: 4, mark: null },
    { id: 5, mark: 'x' },
  ]);
});

it('a create fix names one new row by INTEGER 2^53 and REAL 2^53.0, or by 0 and -0.0: it creates each once, the second is duplicate_target', async () => {
  const db = tmp().file('t.db');
  // `ref` has no type: each value keeps the storage class it was given.
  createDb(
    db,
    `CREATE TABLE src (id INTEGER PRIMARY KEY, ref);
     CREATE TABLE dst (id INTEGER PRIMARY KEY, note TEXT);
     INSERT INTO src VALUES (1, 9007199254740992), (2, 9007199254740992.0), (3, 0), (4, -0.0);`,
  );
  expect(query(db, 'SELECT id, typeof(ref) AS k FROM src ORDER BY id')).toEqual([
    { id: 1, k: 'integer' },
    { id: 2, k: 'real' },
    { id: 3, k: 'integer' },
    { id: 4, k: 'real' },
  ]);
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: src }\ncreate:\n  table: dst\n  key: { id: "{{ row.ref }}" }\n  set: { note: "from {{ row.id }}" }\n`,
  );
  expect([...run.outcomes]).toEqual([
    [1, { outcome: 'updated' }],
    [2, { outcome: 'skipped', reason: 'duplicate_target' }],
    [3, { outcome: 'updated' }],
    [4, { outcome: 'skipped', reason: 'duplicate_target' }],
  ]);
  expect(query(db, 'SELECT id, note FROM dst ORDER BY id', [], { safeIntegers: true })).toEqual([
    { id: 0n, note: 'from 3' },
    { id: 9007199254740992n, note: 'from 1' },
  ]);
});
