/**
 * Lookups on SQLite: a lookup of one row by a composite key finds it; records of a batch that
 * look up the same key share one statement; a lookup that names a table or column the adapter
 * cannot use is refused with its exact error (DF401, DF205); and the identity keys of a lookup of
 * several rows are grouped by agrees with SQLite's own `=` (an INTEGER and a REAL of the same
 * value beyond 2^53 are one key, a BLOB key on a NOCASE column is a key like any other). Rows are
 * read back through an independent connection; expected values are written here or asked of
 * SQLite.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, openDb, query, refusal, runYaml, sqliteTarget, withAdapter } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('lookups.db');
  createDb(path, sql);
  return path;
}

describe('lookups of one row (get)', () => {
  it('by a composite primary key: each record finds the row both columns name', async () => {
    const db = newDb(
      "CREATE TABLE src (id INTEGER PRIMARY KEY, tenant TEXT, seq INTEGER, note TEXT); INSERT INTO src VALUES (1, 'a', 2, NULL), (2, 'b', 1, NULL), (3, 'b', 9, NULL); " +
        "CREATE TABLE events (tenant TEXT, seq INTEGER, label TEXT, PRIMARY KEY (tenant, seq)); INSERT INTO events VALUES ('a', 1, 'a1'), ('a', 2, 'a2'), ('b', 1, 'b1'), ('b', 2, 'b2')",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  e: { table: events, get: { tenant: "{{ s.tenant }}", seq: "{{ s.seq }}" } }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ e.label }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 3, updated: 2, failed: 0 });
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: 'a2' },
      { id: 2, note: 'b1' },
      { id: 3, note: null },
    ]);
  });

  it('records of a batch that look up the same key share one statement: four records, two keys, two lookups', async () => {
    const db = newDb(
      'CREATE TABLE src (id INTEGER PRIMARY KEY, user_id INTEGER, note TEXT); INSERT INTO src VALUES (1, 7, NULL), (2, 7, NULL), (3, 8, NULL), (4, 7, NULL); ' +
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (7, 'seven'), (8, 'eight')",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  u: { table: users, get: { id: "{{ s.user_id }}" } }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ u.name }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 4, updated: 4, failed: 0 });
    expect(run.requests.lookup).toBe(2);
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: 'seven' },
      { id: 2, note: 'seven' },
      { id: 3, note: 'eight' },
      { id: 4, note: 'seven' },
    ]);
  });

  // Plans built through the library reach the adapter without compileSpec's checks.
  it('a table that does not exist is DF401, named without a spec place (a run whose table went away, or undo)', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)');
    const err = await withAdapter(db, (a) => refusal(a.lookup([{ table: 'nope', key: { id: 1 }, consistentRead: false }])));
    expect(err).toMatchObject({
      category: 'config',
      code: 'DF401',
      message: `table \`nope\` does not exist in ${db}; check the name against the database's tables`,
    });
  });

  it('a lock another process holds while rows of several keys are looked up is DF411 (retry), not a failure of those records', async () => {
    const db = newDb("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'one')");
    const adapter = createSqliteAdapter({ backend: 'sqlite', path: db, busyTimeoutMs: 50 });
    const other = openDb(db);
    try {
      const lookupMany = adapter.lookupMany as NonNullable<typeof adapter.lookupMany>;
      const request = { table: 'items', match: { id: 1 }, max: 3, consistentRead: false };
      // The table's schema is read by the first lookup, before the lock.
      expect(await lookupMany([request], { concurrency: 1 })).toEqual([[{ id: 1, v: 'one' }]]);
      other.exec('BEGIN EXCLUSIVE');
      const err = await refusal(lookupMany([request], { concurrency: 1 }));
      expect([err.code, err.category]).toEqual(['DF411', 'connection']);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await adapter.close();
    }
  });

  it('a lookup of several rows in a table that does not exist is DF401, named without a spec place', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)');
    const err = await withAdapter(db, (a) =>
      refusal(
        (a.lookupMany as NonNullable<typeof a.lookupMany>)([{ table: 'nope', match: { id: 1 }, max: 3, consistentRead: false }], {
          concurrency: 1,
        }),
      ),
    );
    expect([err.code, err.message]).toEqual([
      'DF401',
      `table \`nope\` does not exist in ${db}; check the name against the database's tables`,
    ]);
  });

  it('a key column that is not a plain identifier is DF205, a config error, and nothing is looked up', async () => {
    const db = newDb("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'one')");
    const { err, stats } = await withAdapter(db, async (a) => ({
      err: await refusal(a.lookup([{ table: 'items', key: { 'id or 1': 1 }, consistentRead: false }])),
      stats: a.stats(),
    }));
    expect(err).toMatchObject({ category: 'config', code: 'DF205', message: 'lookup column `id or 1` must be a plain identifier' });
    expect(stats).toEqual({});
  });
});

describe('lookups of several rows group rows by their key as SQLite compares it', () => {
  it('a REAL key finds the rows holding the INTEGER of the same value, beyond 2^53 too', async () => {
    const db = newDb(
      'CREATE TABLE src (id INTEGER PRIMARY KEY, ref REAL, note TEXT); INSERT INTO src VALUES (1, 9007199254740992.0, NULL), (2, 5.0, NULL); ' +
        "CREATE TABLE items (id INTEGER PRIMARY KEY, owner INTEGER, v TEXT); INSERT INTO items VALUES (1, 9007199254740992, 'big'), (2, 9007199254740993, 'next'), (3, 5, 'five')",
    );
    // SQLite's own answer: each REAL equals exactly one INTEGER owner.
    expect(query(db, 'SELECT s.id, i.v FROM src s JOIN items i ON i.owner = s.ref ORDER BY s.id')).toEqual([
      { id: 1, v: 'big' },
      { id: 2, v: 'five' },
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  rel: { table: items, where: { equals: { owner: "{{ s.ref }}" } }, max: 3 }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ rel[0].v }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: 'big' },
      { id: 2, note: 'five' },
    ]);
  });

  it('a BLOB key on a NOCASE column finds the row holding those bytes (not the text of the same letters)', async () => {
    const db = newDb(
      "CREATE TABLE src (id INTEGER PRIMARY KEY, ref BLOB, note TEXT); INSERT INTO src VALUES (1, x'6162', NULL); " +
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE, v TEXT); INSERT INTO items VALUES (1, x'6162', 'bytes'), (2, 'ab', 'text'), (3, 'AB', 'upper')",
    );
    expect(query(db, "SELECT v FROM items WHERE name = x'6162'")).toEqual([{ v: 'bytes' }]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nlookups:\n  rel: { table: items, where: { equals: { name: "{{ s.ref }}" } }, max: 3 }\n` +
        'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ rel[0].v }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    expect(query(db, 'SELECT id, note FROM src')).toEqual([{ id: 1, note: 'bytes' }]);
  });
});
