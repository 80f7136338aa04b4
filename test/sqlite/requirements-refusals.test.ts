/**
 * What `check` says, word for word, when a SQLite fix does not fit the database: a table that does
 * not exist (DF401), columns the table lacks (DF405, listing every missing column and every column
 * the table has), an update key that is not unique (DF403, with why each unique index is not a key
 * and which keys would do), a column `update.remove` cannot empty (DF405, DF262, DF263) and a delete
 * that a foreign key would cascade (DF264). Each refusal points at the spec value at fault (the
 * diagnostic's path, which becomes the file:line:col a person reads), and nothing is written.
 * Expected messages and paths are written down here; the rows are read back through an
 * independent connection.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('test.db');
  createDb(path, sql);
  return path;
}

const ITEMS =
  'CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT UNIQUE, note TEXT, flag INTEGER NOT NULL DEFAULT 0); ' +
  "INSERT INTO items VALUES (1, 'a', NULL, 0), (2, 'b', NULL, 1)";

/** The rows of `items`, as SQLite holds them. */
const itemRows = (db: string) => query(db, 'SELECT id, code, note, flag FROM items ORDER BY id');
const ITEM_ROWS = [
  { id: 1, code: 'a', note: null, flag: 0 },
  { id: 2, code: 'b', note: null, flag: 1 },
];

describe('a table that does not exist (DF401)', () => {
  it('names the spec value, the table and the database file', async () => {
    const db = newDb(ITEMS);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: itemz }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF401', category: 'config', diagnostics: [{ path: '/source/table' }] });
    expect(err.message).toBe(`source.table: table \`itemz\` does not exist in ${db}; check the name against the database's tables`);
    expect(itemRows(db)).toEqual(ITEM_ROWS);
  });
});

describe('columns the table lacks (DF405)', () => {
  it('in source.where: every missing column and every column of the table, pointing at the where', async () => {
    const db = newDb(ITEMS);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { all: [ { isNull: noet }, { equals: { flagg: 1 } } ] } }\n` +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n',
      ),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config', diagnostics: [{ path: '/source/where' }] });
    expect(err.message).toBe('source.where: table `items` has no column `noet`, `flagg`; it has id, code, note, flag');
    expect(itemRows(db)).toEqual(ITEM_ROWS);
  });

  it('under update.set: each column is a key of its own, so the error points at the first missing one', async () => {
    const db = newDb(ITEMS);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x, notes: y, flagg: 1 }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config', diagnostics: [{ path: '/update/set/notes' }] });
    expect(err.message).toBe('update.set: table `items` has no column `notes`, `flagg`; it has id, code, note, flag');
    expect(itemRows(db)).toEqual(ITEM_ROWS);
  });

  it('under create.set: points at the first missing column of the create', async () => {
    const db = newDb(`${ITEMS}; CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT)`);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\ncreate:\n  table: tags\n  key: { id: "{{ row.id }}" }\n  set: { labl: "{{ row.code }}" }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config', diagnostics: [{ path: '/create/set/labl' }] });
    expect(err.message).toBe('create.set: table `tags` has no column `labl`; it has id, label');
    expect(query(db, 'SELECT count(*) AS n FROM tags')).toEqual([{ n: 0 }]);
  });

  it('under update.key: the key is one value, so the error points at the key itself (rowid is no column of a table with a primary key)', async () => {
    const db = newDb(ITEMS);
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { rowid: "{{ row.id }}" }\n  set: { note: x }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config', diagnostics: [{ path: '/update/key' }] });
    expect(err.message).toBe('update.key: table `items` has no column `rowid`; it has id, code, note, flag');
    expect(itemRows(db)).toEqual(ITEM_ROWS);
  });
});

describe('an update key that is not unique (DF403)', () => {
  const SRC = 'CREATE TABLE src (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO src VALUES (1, ?)';

  it('names the key columns and lists every key that would do: the primary key first, then each unique index', async () => {
    const db = newDb(
      'CREATE TABLE events (tenant TEXT, seq INTEGER, code TEXT UNIQUE, note TEXT, PRIMARY KEY (tenant, seq)); ' +
        "INSERT INTO events VALUES ('a', 1, 'c1', NULL), ('a', 2, 'c2', NULL)",
    );
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: e, table: events }\nupdate:\n  key: { tenant: "{{ e.tenant }}", note: "{{ e.note }}" }\n  set: { code: x }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF403', category: 'config', diagnostics: [{ path: '/update/key' }] });
    expect(err.message).toBe(
      'update.key: (tenant, note) is not the primary key or a unique index of `events`, so it could match several rows; key by (tenant, seq) or (code)',
    );
    expect(query(db, 'SELECT tenant, seq, code, note FROM events ORDER BY seq')).toEqual([
      { tenant: 'a', seq: 1, code: 'c1', note: null },
      { tenant: 'a', seq: 2, code: 'c2', note: null },
    ]);
  });

  it('with no usable key at all: says why each unique index is none, and advises a unique column', async () => {
    const db = newDb(
      `${SRC.replace('?', "'k'")}; ` +
        'CREATE TABLE w (email TEXT COLLATE NOCASE, code TEXT, active INTEGER, note TEXT, PRIMARY KEY (email COLLATE BINARY)) WITHOUT ROWID; ' +
        'CREATE UNIQUE INDEX w_code ON w (code) WHERE active = 1; ' +
        "INSERT INTO w VALUES ('a@x.io', 'k', 1, NULL), ('A@X.IO', 'k', 0, NULL)",
    );
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nupdate:\n  table: w\n  key: { code: "{{ s.v }}" }\n  set: { note: n }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF403', category: 'config', diagnostics: [{ path: '/update/key' }] });
    // SQLite lists the indexes newest first: w_code, then the primary key's.
    expect(err.message).toBe(
      'update.key: (code) is not the primary key or a unique index of `w`, so it could match several rows ' +
        "((code) is unique only where its index `w_code`'s WHERE holds; (email) is unique by collation BINARY, but `email` compares by its own); " +
        'key by a unique column',
    );
    // SQLite itself: the key names both rows.
    expect(query(db, "SELECT count(*) AS n FROM w WHERE code = 'k'")).toEqual([{ n: 2 }]);
    expect(query(db, 'SELECT count(*) AS n FROM w WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });
});

describe('update.remove of a column SQLite cannot empty', () => {
  const removing = (db: string, columns: string) =>
    `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { code: "{{ row.code }}" }\n  remove: [${columns}]\n`;

  it.each([
    [
      'a column the table lacks (DF405)',
      'note, notes',
      'DF405',
      'update.remove: table `items` has no column `notes`; it has id, code, note, flag',
    ],
    [
      'a primary key column (DF263)',
      'note, id',
      'DF263',
      'update.remove: `id` is part of the primary key of `items`; a key column cannot be removed. To remove the row, write a fix with `delete`',
    ],
    [
      'a NOT NULL column (DF262)',
      'note, flag',
      'DF262',
      'update.remove: `flag` of `items` is NOT NULL; on SQLite, remove writes NULL, which this column cannot hold. Write a value with update.set (overwrite) instead',
    ],
  ])('%s: the message, and the path of that entry of the list', async (_what, columns, code, message) => {
    const db = newDb(ITEMS);
    const err = await refusal(runYaml(removing(db, columns)));
    expect(err).toMatchObject({ code, category: 'config', diagnostics: [{ path: '/update/remove/1' }] });
    expect(err.message).toBe(message);
    expect(itemRows(db)).toEqual(ITEM_ROWS);
  });
});

describe('a delete a foreign key would cascade (DF264)', () => {
  it.each([
    ['CASCADE', 'ON DELETE CASCADE'],
    ['SET NULL', 'ON DELETE SET NULL'],
  ])('ON DELETE %s: names the referencing column and points at the delete', async (action, clause) => {
    const db = newDb(
      'CREATE TABLE kids (id INTEGER PRIMARY KEY, name TEXT); ' +
        `CREATE TABLE toys (id INTEGER PRIMARY KEY, kid_id INTEGER REFERENCES kids(id) ${clause}); ` +
        "INSERT INTO kids VALUES (1, 'k1'), (2, 'k2'); INSERT INTO toys VALUES (10, 1)",
    );
    const err = await refusal(
      runYaml(`name: t\n${sqliteTarget(db)}source: { as: kid, table: kids }\ndelete:\n  key: { id: "{{ kid.id }}" }\n`),
    );
    expect(err).toMatchObject({ code: 'DF264', category: 'config', diagnostics: [{ path: '/delete' }] });
    expect(err.message).toBe(
      `delete: \`toys\`.\`kid_id\` references \`kids\` ON DELETE ${action}, so deleting a row would also change rows of \`toys\`, which datafix neither shows, journals nor undoes. Delete (or fix) those rows with their own fix first, or change the foreign key`,
    );
    expect(query(db, 'SELECT id FROM kids ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(query(db, 'SELECT id, kid_id FROM toys')).toEqual([{ id: 10, kid_id: 1 }]);
  });
});
