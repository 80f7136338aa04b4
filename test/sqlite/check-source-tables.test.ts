/**
 * The SQLite adapter's check() holds a fix's tables and columns against the live schema before
 * any row is read: a source that is no table, an unknown table or column under source, lookups,
 * update (and its key, set and touch), a lookup key that is not unique, and a reference in a rule
 * to a column the table lacks. Each refusal is a config error whose message names the place in
 * the spec, the table and what it has, word for word, and whose diagnostic points at that place;
 * no row is changed.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

const SCHEMA =
  "CREATE TABLE items (id TEXT PRIMARY KEY, media_id TEXT, note TEXT); INSERT INTO items VALUES ('a', 'm1', NULL), ('b', 'm2', NULL);" +
  "CREATE TABLE media (id TEXT PRIMARY KEY, kind TEXT, url TEXT); INSERT INTO media VALUES ('m1', 'image', 'u1'), ('m2', 'image', 'u2');";

function newDb(): string {
  const path = tmp().file('check.db');
  createDb(path, SCHEMA);
  return path;
}

/** Runs `body` (everything after the target) against `db` and returns the refusal. */
const refused = (db: string, body: string) => refusal(runYaml(`name: t\n${sqliteTarget(db)}${body}`));

/** What check() refused, as a user sees it: code, category, message and where in the spec. */
const seen = (err: { code: string; category: string; message: string; diagnostics: readonly { path?: string }[] }) => ({
  code: err.code,
  category: err.category,
  message: err.message,
  paths: err.diagnostics.map((d) => d.path),
});

const untouched = (db: string) => {
  expect(query(db, 'SELECT id, media_id, note FROM items ORDER BY id')).toEqual([
    { id: 'a', media_id: 'm1', note: null },
    { id: 'b', media_id: 'm2', note: null },
  ]);
};

describe('the source', () => {
  it('a plan whose source is a DynamoDB scan is DF205 on a SQLite target, before any table is looked up', async () => {
    const db = newDb();
    const plan = compileYaml(
      'name: t\ntarget:\n  dynamodb: { table: items }\nsource: { as: item, scan: { segments: 1 } }\n' +
        'update:\n  key: { id: "{{ item.id }}" }\n  set: { note: x }\n',
    );
    expect(plan.source.kind).toBe('scan');
    const adapter = createSqliteAdapter({ backend: 'sqlite', path: db, busyTimeoutMs: 5000 });
    try {
      const err = await refusal(adapter.check(plan));
      expect({ code: err.code, category: err.category, message: err.message }).toEqual({
        code: 'DF205',
        category: 'config',
        message: 'a SQLite target reads with source.table',
      });
    } finally {
      await adapter.close();
    }
    untouched(db);
  });

  it('an unknown source table is DF401 at source.table', async () => {
    const db = newDb();
    const err = await refused(db, 'source: { as: row, table: itemz }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n');
    expect(seen(err)).toEqual({
      code: 'DF401',
      category: 'config',
      message: `source.table: table \`itemz\` does not exist in ${db}; check the name against the database's tables`,
      paths: ['/source/table'],
    });
    untouched(db);
  });

  it('a source where on a column the table lacks is DF405 at source.where, listing the columns it has', async () => {
    const db = newDb();
    const err = await refused(
      db,
      'source: { as: row, table: items, where: { all: [ { isNull: note }, { equals: { medium: m1 } } ] } }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n',
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'source.where: table `items` has no column `medium`; it has id, media_id, note',
      paths: ['/source/where'],
    });
    untouched(db);
  });
});

describe('lookups', () => {
  const update = 'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m.url }}" }\n';

  it('an unknown lookup table is DF401 at lookups.<name>.table', async () => {
    const db = newDb();
    const err = await refused(
      db,
      `source: { as: row, table: items }\nlookups:\n  m: { table: medias, get: { id: "{{ row.media_id }}" } }\n${update}`,
    );
    expect(seen(err)).toEqual({
      code: 'DF401',
      category: 'config',
      message: `lookups.m.table: table \`medias\` does not exist in ${db}; check the name against the database's tables`,
      paths: ['/lookups/m/table'],
    });
    untouched(db);
  });

  it('a get lookup keyed by a column the table lacks is DF405 at lookups.<name>.get', async () => {
    const db = newDb();
    const err = await refused(
      db,
      `source: { as: row, table: items }\nlookups:\n  m: { table: media, get: { mid: "{{ row.media_id }}" } }\n${update}`,
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'lookups.m.get: table `media` has no column `mid`; it has id, kind, url',
      paths: ['/lookups/m/get'],
    });
    untouched(db);
  });

  it('a get lookup keyed by a column that is not unique is DF403 at lookups.<name>.get, naming the key to use', async () => {
    const db = newDb();
    const err = await refused(
      db,
      `source: { as: row, table: items }\nlookups:\n  m: { table: media, get: { kind: "{{ row.media_id }}" } }\n${update}`,
    );
    expect(seen(err)).toEqual({
      code: 'DF403',
      category: 'config',
      message: 'lookups.m.get: (kind) is not the primary key or a unique index of `media`, so it could match several rows; key by (id)',
      paths: ['/lookups/m/get'],
    });
    // SQLite itself: `kind` matches both rows.
    expect(query(db, "SELECT count(*) AS n FROM media WHERE kind = 'image'")).toEqual([{ n: 2 }]);
    untouched(db);
  });

  it.each([
    ['matched by a template', 'where: { equals: { media: "{{ row.media_id }}" } }', 'media'],
    ['in its fixed condition', 'where: { all: [ { equals: { id: "{{ row.media_id }}" } }, { notNull: link } ] }', 'link'],
  ])('a where lookup on a column the table lacks (%s) is DF405 at lookups.<name>.where', async (_what, where, column) => {
    const db = newDb();
    const err = await refused(
      db,
      `source: { as: row, table: items }\nlookups:\n  m: { table: media, ${where}, max: 5 }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m[0].url }}" }\n',
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: `lookups.m.where: table \`media\` has no column \`${column}\`; it has id, kind, url`,
      paths: ['/lookups/m/where'],
    });
    untouched(db);
  });

  it('a skip rule reading a column the lookup table lacks is DF405 at the rule, listing the columns the table has', async () => {
    const db = newDb();
    const err = await refused(
      db,
      `source: { as: row, table: items }\nlookups:\n  m: { table: media, get: { id: "{{ row.media_id }}" } }\n` +
        `skip:\n  - { reason: video, when: { equals: { m.knd: video } } }\n${update}`,
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'skip.0.when: `m.knd` reads column `knd`, which table `media` does not have; it has id, kind, url',
      paths: ['/skip/0/when'],
    });
    untouched(db);
  });
});

describe('the update', () => {
  it('an unknown update table is DF401 at update.table, not at the source', async () => {
    const db = newDb();
    const err = await refused(
      db,
      'source: { as: row, table: items }\nupdate:\n  table: medias\n  key: { id: "{{ row.media_id }}" }\n  set: { url: x }\n',
    );
    expect(seen(err)).toEqual({
      code: 'DF401',
      category: 'config',
      message: `update.table: table \`medias\` does not exist in ${db}; check the name against the database's tables`,
      paths: ['/update/table'],
    });
    untouched(db);
  });

  // rowid: a table with a primary key has no rowid column for datafix (it pages and keys by the
  // primary key), though SQLite still answers to the name.
  it('an update key by rowid on a table with a primary key is DF405 at update.key', async () => {
    const db = newDb();
    const err = await refused(db, 'source: { as: row, table: items }\nupdate:\n  key: { rowid: "{{ row.id }}" }\n  set: { note: x }\n');
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'update.key: table `items` has no column `rowid`; it has id, media_id, note',
      paths: ['/update/key'],
    });
    untouched(db);
  });

  it('a set column the table lacks is DF405 at that field of update.set', async () => {
    const db = newDb();
    const err = await refused(
      db,
      'source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x, notes: y }\n',
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'update.set: table `items` has no column `notes`; it has id, media_id, note',
      paths: ['/update/set/notes'],
    });
    untouched(db);
  });

  it('a touch column the table lacks is DF405 at that field of update.touch', async () => {
    const db = newDb();
    const err = await refused(
      db,
      'source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n  touch: { updated_at: "{{ now }}" }\n',
    );
    expect(seen(err)).toEqual({
      code: 'DF405',
      category: 'config',
      message: 'update.touch: table `items` has no column `updated_at`; it has id, media_id, note',
      paths: ['/update/touch/updated_at'],
    });
    untouched(db);
  });
});
