/**
 * remove, delete and create on a real SQLite file: each write is guarded on what was read (a
 * change by another connection between read and write is a conflict and survives), refused at
 * `check` where SQLite cannot do what it says, and never replaces a row.
 */
import { describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, openDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();
const NOW = new Date('2030-01-02T03:04:05.000Z');

function newDb(sql: string): string {
  const path = tmp().file('test.db');
  createDb(path, sql);
  return path;
}

/** An adapter whose write() first lets another connection change the database. */
function withConcurrentWriter(db: string, sql: string): (a: Adapter) => Adapter {
  return (a) => ({
    ...a,
    readPages: a.readPages.bind(a),
    write: async (requests, options) => {
      const other = openDb(db);
      other.exec(sql);
      other.close();
      return a.write(requests, options);
    },
  });
}

const ITEMS =
  "CREATE TABLE items (id INTEGER PRIMARY KEY, legacy TEXT, note TEXT NOT NULL DEFAULT '', updated_at TEXT); " +
  "INSERT INTO items VALUES (1, 'a', 'n1', 'old'), (2, NULL, 'n2', 'old'), (3, 'c', 'n3', 'old')";
const removeLegacy = (db: string, extra = '') =>
  `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  remove: [legacy]\n${extra}`;

describe('update.remove on SQLite (remove = set NULL)', () => {
  it('sets the column NULL where it holds a value; NULL already is no_change; touch goes with it', async () => {
    const db = newDb(ITEMS);
    const run = await runYaml(removeLegacy(db, '  touch: { updated_at: "{{ now }}" }\n'), { now: NOW });
    expect(run.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, failed: 0, reasons: { no_change: 1 } });
    expect(run.outcomes.get(2)).toEqual({ outcome: 'skipped', reason: 'no_change' });
    expect(query(db, 'SELECT id, legacy, note, updated_at FROM items ORDER BY id')).toEqual([
      { id: 1, legacy: null, note: 'n1', updated_at: NOW.toISOString() },
      { id: 2, legacy: null, note: 'n2', updated_at: 'old' },
      { id: 3, legacy: null, note: 'n3', updated_at: NOW.toISOString() },
    ]);
  });

  it('the dry run shows each removal as value → null (remove) and writes nothing', async () => {
    const db = newDb(ITEMS);
    const run = await runYaml(removeLegacy(db), { dryRun: true });
    expect(run.records.filter((r) => r.outcome === 'updated').map((r) => r.changes)).toEqual([
      [{ field: 'legacy', before: 'a', after: null, guard: 'unchanged', remove: true }],
      [{ field: 'legacy', before: 'c', after: null, guard: 'unchanged', remove: true }],
    ]);
    expect(query(db, 'SELECT legacy FROM items ORDER BY id')).toEqual([{ legacy: 'a' }, { legacy: null }, { legacy: 'c' }]);
  });

  it('a value changed by another writer after the read is a conflict, and the other value is kept', async () => {
    const db = newDb(ITEMS);
    const run = await runYaml(removeLegacy(db), { wrap: withConcurrentWriter(db, "UPDATE items SET legacy = 'theirs' WHERE id = 3") });
    expect(run.outcomes.get(3)).toEqual({ outcome: 'skipped', reason: 'conflict' });
    expect(query(db, 'SELECT legacy FROM items ORDER BY id')).toEqual([{ legacy: null }, { legacy: null }, { legacy: 'theirs' }]);
  });

  it('a NOT NULL column is refused at check (DF262), a primary key column (DF263), a missing one (DF405); nothing written', async () => {
    const db = newDb(ITEMS);
    const notNull = await refusal(runYaml(removeLegacy(db).replace('remove: [legacy]', 'remove: [legacy, note]')));
    expect(notNull.code).toBe('DF262');
    expect(notNull.message).toContain(
      'update.remove: `note` of `items` is NOT NULL; on SQLite, remove writes NULL, which this column cannot hold',
    );
    // A primary key column outside the update key reaches check (one inside it is DF213 at compile).
    const other = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT UNIQUE NOT NULL, legacy TEXT)');
    const pkCheck = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(other)}source: { as: row, table: items }\nupdate:\n  key: { code: "{{ row.code }}" }\n  remove: [id]\n`,
      ),
    );
    expect(pkCheck.code).toBe('DF263');
    expect(pkCheck.message).toContain('update.remove: `id` is part of the primary key of `items`; a key column cannot be removed');
    const missing = await refusal(runYaml(removeLegacy(db).replace('remove: [legacy]', 'remove: [legacyy]')));
    expect(missing.code).toBe('DF405');
    expect(missing.message).toContain('update.remove: table `items` has no column `legacyy`');
    expect(query(db, 'SELECT legacy FROM items ORDER BY id')).toEqual([{ legacy: 'a' }, { legacy: null }, { legacy: 'c' }]);
  });
});

const FAMILY =
  'CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT); ' +
  'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT, score REAL, data BLOB); ' +
  "INSERT INTO parents VALUES (1, 'p1'), (2, 'p2'); " +
  "INSERT INTO kids VALUES (10, 1, 'k10', 1.5, NULL), (11, 7, 'k11', 2.0, x'00ff'), (12, 8, NULL, NULL, NULL), (13, 2, 'k13', 3.0, NULL)";
const deleteOrphans = (db: string) =>
  `name: t\n${sqliteTarget(db)}source: { as: kid, table: kids }\n` +
  'lookups:\n  parent: { table: parents, get: { id: "{{ kid.parent_id }}" } }\n' +
  'skip:\n  - { reason: parent_exists, when: { exists: parent.id } }\n' +
  'delete:\n  key: { id: "{{ kid.id }}" }\n';

describe('delete on SQLite', () => {
  it('deletes exactly the rows not skipped; the dry run shows every column of each going', async () => {
    const db = newDb(FAMILY);
    const dry = await runYaml(deleteOrphans(db), { dryRun: true });
    const k11 = dry.records.find((r) => r.key.id === 11);
    expect(k11?.target).toEqual({ table: 'kids', key: { id: 11 }, action: 'delete' });
    expect(k11?.changes?.map((c) => [c.field, c.after])).toEqual([
      ['id', undefined],
      ['parent_id', undefined],
      ['name', undefined],
      ['score', undefined],
      ['data', undefined],
    ]);
    expect(query(db, 'SELECT count(*) AS n FROM kids')).toEqual([{ n: 4 }]);
    const run = await runYaml(deleteOrphans(db));
    expect(run.summary).toMatchObject({ total: 4, updated: 2, skipped: 2, failed: 0, reasons: { parent_exists: 2 } });
    expect(query(db, 'SELECT id FROM kids ORDER BY id')).toEqual([{ id: 10 }, { id: 13 }]);
  });

  it('a row changed in any column after the read (even one the fix never names) is a conflict and is kept', async () => {
    const db = newDb(FAMILY);
    const run = await runYaml(deleteOrphans(db), { wrap: withConcurrentWriter(db, 'UPDATE kids SET score = 9 WHERE id = 12') });
    expect(run.outcomes.get(12)).toEqual({ outcome: 'skipped', reason: 'conflict' });
    expect(run.outcomes.get(11)).toEqual({ outcome: 'updated' });
    expect(query(db, 'SELECT id, score FROM kids ORDER BY id')).toEqual([
      { id: 10, score: 1.5 },
      { id: 12, score: 9 },
      { id: 13, score: 3 },
    ]);
  });

  it('a row deleted by someone else meanwhile is not_found', async () => {
    const db = newDb(FAMILY);
    const run = await runYaml(deleteOrphans(db), { wrap: withConcurrentWriter(db, 'DELETE FROM kids WHERE id = 11') });
    expect(run.outcomes.get(11)).toEqual({ outcome: 'skipped', reason: 'not_found' });
    expect(query(db, 'SELECT id FROM kids ORDER BY id')).toEqual([{ id: 10 }, { id: 13 }]);
  });

  it('a foreign key ON DELETE CASCADE into the table is refused at check (DF264): it would delete rows datafix does not journal', async () => {
    const db = newDb(`${FAMILY}; CREATE TABLE toys (id INTEGER PRIMARY KEY, kid_id INTEGER REFERENCES kids(id) ON DELETE CASCADE)`);
    const err = await refusal(runYaml(deleteOrphans(db)));
    expect(err.code).toBe('DF264');
    expect(err.message).toContain('delete: `toys`.`kid_id` references `kids` ON DELETE CASCADE');
    expect(query(db, 'SELECT count(*) AS n FROM kids')).toEqual([{ n: 4 }]);
  });
});

const createParents = (db: string) =>
  `name: t\n${sqliteTarget(db)}source: { as: kid, table: kids }\n` +
  'create:\n  table: parents\n  key: { id: "{{ kid.parent_id }}" }\n  set: { name: "for {{ kid.name }}" }\n';

describe('create on SQLite', () => {
  it('creates rows whose key names none; an existing one is skipped `exists`; a missing value leaves its column out (NULL); two sources of one key create it once', async () => {
    const db = newDb(`${FAMILY}; INSERT INTO kids VALUES (14, 7, 'k14', NULL, NULL)`);
    const run = await runYaml(createParents(db));
    expect(run.summary).toMatchObject({ total: 5, updated: 2, skipped: 3, failed: 0, reasons: { exists: 2, duplicate_target: 1 } });
    expect(query(db, 'SELECT id, name FROM parents ORDER BY id')).toEqual([
      { id: 1, name: 'p1' },
      { id: 2, name: 'p2' },
      { id: 7, name: 'for k11' },
      { id: 8, name: null },
    ]);
  });

  it('a NOT NULL column without a default that create.set does not write is refused at check (DF265)', async () => {
    const db = newDb(
      FAMILY.replace(
        'parents (id INTEGER PRIMARY KEY, name TEXT)',
        "parents (id INTEGER PRIMARY KEY, name TEXT, owner TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'x')",
      ).replace("INSERT INTO parents VALUES (1, 'p1'), (2, 'p2')", "INSERT INTO parents VALUES (1, 'p1', 'o', 'k'), (2, 'p2', 'o', 'k')"),
    );
    const err = await refusal(runYaml(createParents(db)));
    expect(err.code).toBe('DF265');
    expect(err.message).toContain('create: `parents` has NOT NULL column `owner` without a default, which create.set does not write');
    expect(query(db, 'SELECT count(*) AS n FROM parents')).toEqual([{ n: 2 }]);
  });

  it('a row created by someone else between read and write is a conflict and is never replaced, even under ON CONFLICT REPLACE', async () => {
    const db = newDb(FAMILY.replace('parents (id INTEGER PRIMARY KEY,', 'parents (id INTEGER PRIMARY KEY ON CONFLICT REPLACE,'));
    const run = await runYaml(createParents(db), { wrap: withConcurrentWriter(db, "INSERT INTO parents VALUES (7, 'theirs')") });
    expect(run.outcomes.get(11)).toEqual({ outcome: 'skipped', reason: 'conflict' });
    expect(query(db, 'SELECT id, name FROM parents ORDER BY id')).toEqual([
      { id: 1, name: 'p1' },
      { id: 2, name: 'p2' },
      { id: 7, name: 'theirs' },
      { id: 8, name: null },
    ]);
  });
});

describe('records fetched by rowid (a table without a primary key)', () => {
  it('an update of two different rows keyed by rowid writes both: `SELECT *` returns no rowid, so each is named by its key', async () => {
    const db = newDb(
      "CREATE TABLE notes (body TEXT, seen TEXT); INSERT INTO notes VALUES ('a', NULL), ('b', NULL), ('c', NULL); " +
        'CREATE TABLE marks (id INTEGER PRIMARY KEY, note INTEGER); INSERT INTO marks VALUES (1, 1), (2, 3)',
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: mark, table: marks }\nupdate:\n  table: notes\n  key: { rowid: "{{ mark.note }}" }\n  set: { seen: yes }\n`,
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0 });
    expect(query(db, 'SELECT rowid, body, seen FROM notes ORDER BY rowid')).toEqual([
      { rowid: 1, body: 'a', seen: 'yes' },
      { rowid: 2, body: 'b', seen: null },
      { rowid: 3, body: 'c', seen: 'yes' },
    ]);
  });
});
