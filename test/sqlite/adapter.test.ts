/**
 * The SQLite adapter on real database files: keyset paging, keys, `where` compilation, values that
 * look like SQL, guarded writes (conflict, not_found), schema checks, locks, big integers and
 * read-only dry runs. Assertions are on the rows, read back through an independent connection.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { Adapter, WriteRequest } from '../../src/adapters/types.js';
import { runSpecFile } from '../../src/api.js';
import { evaluate } from '../../src/engine/context.js';
import { DatafixError } from '../../src/errors.js';
import { TIME_SCALE } from '../helpers/time-scale.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, openDb, query, type Row, rowsById, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();
const NOW = new Date('2030-01-02T03:04:05.000Z');

function newDb(sql: string): string {
  const path = tmp().file('test.db');
  createDb(path, sql);
  return path;
}

const sqliteTargetOf = (path: string, busyTimeoutMs = 5000) => ({ backend: 'sqlite' as const, path, busyTimeoutMs });

/** Expects `promise` to reject with a DatafixError and returns it. */
async function rejection(promise: Promise<unknown>): Promise<DatafixError> {
  try {
    await promise;
  } catch (err) {
    return err as DatafixError;
  }
  throw new Error('expected a rejection');
}

/** An adapter whose write() first lets `before` act on the database (another writer), then writes. */
function withConcurrentWriter(before: () => void): (a: Adapter) => Adapter {
  return (a) => ({
    ...a,
    readPages: a.readPages.bind(a),
    write: async (requests, options) => {
      before();
      return a.write(requests, options);
    },
  });
}

describe('keyset paging', () => {
  it('2,500 rows in pages of 100 whose updates remove them from `where`: every row is processed exactly once', async () => {
    const values = Array.from({ length: 2500 }, (_, i) => `('id-${String(i).padStart(5, '0')}', 'v${i}', NULL)`);
    const db = newDb(`CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, note TEXT); INSERT INTO items VALUES ${values.join(',')}`);
    const pages: number[] = [];
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { isNull: note }, pageSize: 100 }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\nrun: { batchSize: 37 }\n',
      { onEvent: (e) => e.type === 'page' && pages.push(e.records) },
    );
    const seen = new Map<unknown, number>();
    for (const r of run.records) seen.set(r.key.id, (seen.get(r.key.id) ?? 0) + 1);
    expect(seen.size).toBe(2500);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(run.summary).toMatchObject({ total: 2500, updated: 2500, skipped: 0, failed: 0 });
    expect(pages.every((n) => n <= 100)).toBe(true);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(2500);
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NULL OR note <> src')).toEqual([{ n: 0 }]);
  });

  it('reads in primary-key order and resumes after the cursor of an earlier page', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (30,'c'),(10,'a'),(20,'b'),(40,'d'),(50,'e')",
    );
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { v: 1 }\n`,
    );
    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      const pages = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 2 })) pages.push(p);
      expect(pages.map((p) => p.records.map((r) => r.key.id))).toEqual([[10, 20], [30, 40], [50]]);
      expect(pages.at(-1)?.cursor).toBeUndefined();
      const resumed = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 2, cursor: pages[0]?.cursor }))
        resumed.push(...p.records.map((r) => r.key.id));
      expect(resumed).toEqual([30, 40, 50]);
    } finally {
      await adapter.close();
    }
  });

  it('count gives exactly the rows readPages yields, from the start or after a cursor, with the where', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (30,'c'),(10,NULL),(20,'b'),(40,NULL),(50,'e'),(60,NULL)",
    );
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { isNull: v } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { v: 1 }\n`,
    );
    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      expect(await adapter.count?.(plan.source, {})).toEqual({ records: 3, estimate: false });
      // After the first page of one row (id 10): 40 and 60 are left.
      expect(await adapter.count?.(plan.source, { cursor: [10] })).toEqual({ records: 2, estimate: false });
      // A null cursor is the position after the last page.
      expect(await adapter.count?.(plan.source, { cursor: null })).toEqual({ records: 0, estimate: false });
    } finally {
      await adapter.close();
    }
  });

  it('a composite primary key pages in key order and updates each row once, by its full key', async () => {
    const values: string[] = [];
    for (const tenant of ['b', 'a', 'c']) for (let seq = 5; seq >= 1; seq--) values.push(`('${tenant}', ${seq}, NULL)`);
    const db = newDb(
      `CREATE TABLE events (tenant TEXT, seq INTEGER, note TEXT, PRIMARY KEY (tenant, seq)); INSERT INTO events VALUES ${values.join(',')}`,
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: e, table: events, where: { isNull: note }, pageSize: 4 }\n` +
        'update:\n  key: { tenant: "{{ e.tenant }}", seq: "{{ e.seq }}" }\n  set: { note: "{{ e.tenant }}-{{ e.seq }}" }\n',
    );
    expect(run.records.map((r) => `${r.key.tenant}${r.key.seq}`)).toEqual(
      ['a', 'b', 'c'].flatMap((t) => [1, 2, 3, 4, 5].map((s) => `${t}${s}`)),
    );
    expect(run.summary).toMatchObject({ total: 15, updated: 15 });
    expect(query(db, "SELECT count(*) AS n FROM events WHERE note = tenant || '-' || seq")).toEqual([{ n: 15 }]);
  });

  it('an update key that is only part of a composite primary key is DF403', async () => {
    const db = newDb(
      "CREATE TABLE events (tenant TEXT, seq INTEGER, note TEXT, PRIMARY KEY (tenant, seq)); INSERT INTO events VALUES ('a', 1, NULL)",
    );
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: e, table: events }\nupdate:\n  key: { tenant: "{{ e.tenant }}" }\n  set: { note: x }\n`,
      ),
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.code).toBe('DF403');
    expect(query(db, 'SELECT note FROM events')).toEqual([{ note: null }]);
  });

  // A table without a primary key is paged by rowid; the rowid column's alias must be a name SQLite
  // accepts (a NUL byte would end the statement text).
  it('a table without a primary key is read in rowid order (updated through a unique column)', async () => {
    const db = newDb(
      "CREATE TABLE logs (name TEXT NOT NULL UNIQUE, note TEXT); INSERT INTO logs VALUES ('second', NULL); INSERT INTO logs VALUES ('first', NULL); INSERT INTO logs VALUES ('third', NULL)",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: logs, pageSize: 2 }\nupdate:\n  key: { name: "{{ row.name }}" }\n  set: { note: seen }\n`,
    );
    // rowid order is insertion order here.
    expect(run.records.map((r) => r.key)).toEqual([{ rowid: 1 }, { rowid: 2 }, { rowid: 3 }]);
    expect(query(db, 'SELECT count(*) AS n FROM logs WHERE note = ?', ['seen'])).toEqual([{ n: 3 }]);
  });

  // For a table without a primary key DF403 advises keying by rowid: that advice must work.
  it('the key DF403 suggests for a table without a primary key (rowid) is accepted', async () => {
    const db = newDb("CREATE TABLE logs (name TEXT, note TEXT); INSERT INTO logs VALUES ('a', NULL)");
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: logs }\nupdate:\n  key: { name: "{{ row.name }}" }\n  set: { note: x }\n`,
      ),
    );
    expect(err.code).toBe('DF403');
    expect(err.message).toContain('rowid');
    // Follow the advice.
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: logs }\nupdate:\n  key: { rowid: "{{ row.rowid }}" }\n  set: { note: x }\n`,
    );
    expect(run.summary.updated).toBe(1);
  });
});

describe('where', () => {
  // Every combination of NULL, '', text and numbers in three columns.
  const cells = ['NULL', "''", "'x'", "'y'", '1', '0'];
  const values: string[] = [];
  let n = 0;
  for (const a of cells) for (const b of cells) for (const c of ['NULL', "'z'"]) values.push(`(${n++}, ${a}, ${b}, ${c})`);
  const schema = `CREATE TABLE m (id INTEGER PRIMARY KEY, a, b, c TEXT); INSERT INTO m VALUES ${values.join(',')}`;

  /** Ids read by a dry run with this `where`. */
  async function readIds(db: string, where: string): Promise<number[]> {
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: m, where: ${where} }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { c: w }\n`,
      { dryRun: true },
    );
    return run.records.map((r) => Number(r.key.id));
  }
  /** Ids the same condition selects in the engine (docs semantics), on the rows as read. */
  function engineIds(db: string, where: string): number[] {
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: m }\nskip:\n  - { reason: hit, when: ${where.replace(/\b([abc])\b(?=\s*[:,\]}])/g, 'row.$1')} }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { c: w }\n`,
    );
    const when = plan.skip[0]?.when;
    if (!when) throw new Error('no rule');
    return query(db, 'SELECT * FROM m ORDER BY id')
      .filter((row: Row) => evaluate(when, new Map<string, unknown>([['row', row]])))
      .map((r) => Number(r.id));
  }
  const sqlIds = (db: string, sql: string) => query(db, `SELECT id FROM m WHERE ${sql} ORDER BY id`).map((r) => Number(r.id));

  it.each([
    ['{ exists: a }', "a IS NOT NULL AND a <> ''"],
    ['{ missing: a }', "a IS NULL OR a = ''"],
    ['{ isNull: [a, c] }', 'a IS NULL AND c IS NULL'],
    ['{ notNull: b }', 'b IS NOT NULL'],
    ['{ equals: { a: x, b: 1 } }', "a = 'x' AND b = 1"],
    ['{ equals: { a: null } }', 'a IS NULL'],
    ['{ any: [ { equals: { a: x } }, { missing: b } ] }', "a = 'x' OR b IS NULL OR b = ''"],
    ['{ all: [ { notNull: a }, { not: { missing: b } } ] }', "a IS NOT NULL AND b IS NOT NULL AND b <> ''"],
    ['{ not: { exists: a } }', "a IS NULL OR a = ''"],
    ['{ not: { isNull: c } }', 'c IS NOT NULL'],
  ])('%s reads exactly the rows of `WHERE %s`, as the engine would judge them', async (where, sql) => {
    const db = newDb(schema);
    const ids = await readIds(db, where);
    const expected = sqlIds(db, sql);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(values.length);
    expect(ids).toEqual(expected);
    expect(ids).toEqual(engineIds(db, where));
  });

  // Under SQL's three-valued logic `NOT (NULL = 'x')` is NULL; the documented meaning of
  // `not: { equals: … }` (and the engine's, in a skip rule) is "does not equal", which NULL
  // satisfies, so `where: { not: { equals: { status: done } } }` must read rows with NULL status.
  it.each([
    ['{ not: { equals: { a: x } } }', "a IS NOT 'x'"],
    ['{ not: { any: [ { equals: { a: x } }, { equals: { b: 1 } } ] } }', "a IS NOT 'x' AND b IS NOT 1"],
  ])('%s also reads rows where the column is NULL (`WHERE %s`)', async (where, sql) => {
    const db = newDb(schema);
    expect(await readIds(db, where)).toEqual(sqlIds(db, sql));
  });

  it('a where value holding SQL text is bound, not spliced: it matches only the row holding exactly that text', async () => {
    const evil = "x'); DROP TABLE m; --";
    const db = newDb(`${schema}; INSERT INTO m VALUES (1000, '${evil.replace(/'/g, "''")}', NULL, NULL)`);
    const ids = await readIds(db, `{ equals: { a: ${JSON.stringify(evil)} } }`);
    expect(ids).toEqual([1000]);
    expect(query(db, 'SELECT count(*) AS n FROM m')).toEqual([{ n: values.length + 1 }]);
  });
});

describe('values that look like SQL', () => {
  it('ids and values with quotes, semicolons and comments are read and written exactly', async () => {
    const ids = ["it's", 'say "hi"', "x'); DROP TABLE items; --", 'back\\slash', 'ünï-cödé 🎉', '; DELETE FROM items'];
    const db = tmp().file('sql.db');
    createDb(db, 'CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, note TEXT)');
    const conn = openDb(db);
    const insert = conn.prepare('INSERT INTO items VALUES (?, ?, NULL)');
    for (const id of ids) insert.run(id, `value of ${id} -- ' " ; */ /*`);
    conn.close();
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { isNull: note } }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: ids.length, updated: ids.length, failed: 0 });
    const rows = rowsById(db, 'items');
    expect(rows.size).toBe(ids.length);
    for (const id of ids) expect(rows.get(id)?.note, id).toBe(`value of ${id} -- ' " ; */ /*`);
  });
});

describe('guarded writes', () => {
  const schema =
    "CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, note TEXT, updated_at TEXT); INSERT INTO items VALUES ('a', 'ours-a', NULL, 'old'), ('b', 'ours-b', NULL, 'old'), ('c', 'ours-c', NULL, 'old')";
  const fill = (db: string) =>
    `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { isNull: note } }\n` +
    'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n  touch: { updated_at: "{{ now }}" }\n';

  it("a target another writer filled after the read is a conflict and keeps the other writer's value", async () => {
    const db = newDb(schema);
    const run = await runYaml(fill(db), {
      now: NOW,
      wrap: withConcurrentWriter(() => {
        const other = openDb(db);
        other.prepare("UPDATE items SET note = 'theirs', updated_at = 'their-time' WHERE id = 'b'").run();
        other.close();
      }),
    });
    expect(run.outcomes.get('b')).toMatchObject({ outcome: 'skipped', reason: 'conflict' });
    expect(run.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, reasons: { conflict: 1 } });
    expect(rowsById(db, 'items').get('b')).toMatchObject({ note: 'theirs', updated_at: 'their-time' });
    expect(rowsById(db, 'items').get('a')).toMatchObject({ note: 'ours-a', updated_at: NOW.toISOString() });
  });

  it('a row deleted after the read is not_found; nothing is written for it', async () => {
    const db = newDb(schema);
    const run = await runYaml(fill(db), {
      wrap: withConcurrentWriter(() => {
        const other = openDb(db);
        other.prepare("DELETE FROM items WHERE id = 'c'").run();
        other.close();
      }),
    });
    expect(run.outcomes.get('c')).toMatchObject({ outcome: 'skipped', reason: 'not_found' });
    expect(run.summary).toMatchObject({ updated: 2, skipped: 1, reasons: { not_found: 1 } });
    expect(query(db, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 'a' }, { id: 'b' }]);
  });

  it('a stale request written directly: fill-only on a filled field is a conflict, on a missing key not_found; touch fields are not written', async () => {
    const db = newDb(schema);
    const other = openDb(db);
    other.prepare("UPDATE items SET note = 'theirs' WHERE id = 'a'").run();
    other.close();
    const adapter = createSqliteAdapter(sqliteTargetOf(db));
    const req = (id: string): WriteRequest => ({
      table: 'items',
      key: { id },
      fields: [
        { name: 'note', value: 'ours', guard: 'absent', before: null },
        { name: 'updated_at', value: 'now', guard: 'none', before: 'old' },
      ],
    });
    try {
      const results = await adapter.write([req('a'), req('zzz'), req('b')], { concurrency: 1 });
      expect(results).toEqual([{ status: 'conflict' }, { status: 'not_found' }, { status: 'applied' }]);
    } finally {
      await adapter.close();
    }
    expect(query(db, 'SELECT id, note, updated_at FROM items ORDER BY id')).toEqual([
      { id: 'a', note: 'theirs', updated_at: 'old' },
      { id: 'b', note: 'ours', updated_at: 'now' },
      { id: 'c', note: null, updated_at: 'old' },
    ]);
  });

  it('overwrite is conditional on the value read: a value changed since is a conflict and is kept', async () => {
    const db = newDb("CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT); INSERT INTO items VALUES ('a', 'read'), ('b', 'read')");
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: mine }\n  overwrite: true\n`,
      {
        wrap: withConcurrentWriter(() => {
          const other = openDb(db);
          other.prepare("UPDATE items SET note = 'changed' WHERE id = 'a'").run();
          other.close();
        }),
      },
    );
    expect(run.outcomes.get('a')).toMatchObject({ outcome: 'skipped', reason: 'conflict' });
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 'a', note: 'changed' },
      { id: 'b', note: 'mine' },
    ]);
  });

  it.each([
    ['NOCASE', 'READ', 'read'],
    ['RTRIM', 'read  ', 'read'],
  ])(
    'under %s, a value changed since the read only in case or trailing spaces is a conflict and is kept',
    async (collation, theirs, read) => {
      const db = newDb(
        `CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT COLLATE ${collation}); INSERT INTO items VALUES ('a', '${read}'), ('b', '${read}')`,
      );
      const run = await runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: mine }\n  overwrite: true\n`,
        {
          wrap: withConcurrentWriter(() => {
            const other = openDb(db);
            other.prepare("UPDATE items SET note = ? WHERE id = 'a'").run(theirs);
            other.close();
          }),
        },
      );
      expect(run.outcomes.get('a')).toMatchObject({ outcome: 'skipped', reason: 'conflict' });
      expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
        { id: 'a', note: theirs },
        { id: 'b', note: 'mine' },
      ]);
    },
  );
});

describe('schema checks before anything is read', () => {
  const schema =
    "CREATE TABLE items (id TEXT PRIMARY KEY, media_id TEXT, note TEXT); INSERT INTO items VALUES ('a', 'm', NULL), ('b', 'm', NULL)";

  it('an update key that is not unique is DF403 and nothing is written', async () => {
    const db = newDb(schema);
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { media_id: "{{ row.media_id }}" }\n  set: { note: x }\n`,
      ),
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.code).toBe('DF403');
    expect(err.message).toContain('media_id');
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('comparing a column with an application-defined collation, in a skip rule or where, is DF413; other rules still run', async () => {
    // better-sqlite3 cannot register a collation; Python's sqlite3 module can, as an app would.
    const db = tmp().file('app.db');
    const made = spawnSync('python3', [
      '-c',
      'import sqlite3, sys\n' +
        'c = sqlite3.connect(sys.argv[1])\n' +
        'c.create_collation("app_order", lambda a, b: (a > b) - (a < b))\n' +
        'c.executescript("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT COLLATE app_order, note TEXT);' +
        " INSERT INTO items VALUES ('a', 'x', NULL), ('b', 'y', NULL);\")\n" +
        'c.close()\n',
      db,
    ]);
    expect(made.status, `python3 with its sqlite3 module is needed to make the database: ${made.error ?? made.stderr}`).toBe(0);
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nskip:\n  - { reason: named_x, when: { equals: { row.name: x } } }\n` +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
      ),
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.code).toBe('DF413');
    expect(err.message).toContain(
      'skip.0.when: SQLite cannot compare column `name` of `items` here (no such collation sequence: app_order)',
    );
    expect(err.diagnostics[0]?.path).toBe('/skip/0/when');
    // The same comparison in where: SQLite itself would fail; it is the same clear error, not a crash.
    const inWhere = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { equals: { name: x } } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n`,
      ),
    );
    expect(inWhere).toMatchObject({ code: 'DF413', diagnostics: [{ path: '/source/where' }] });
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
    // Rules that compare no text of that column are not affected.
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nskip:\n  - { reason: unnamed, when: { missing: row.name } }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
    );
    expect(run.summary).toMatchObject({ updated: 2 });
  });

  it('a lookup keyed by a column that is not unique is DF403 naming the lookup', async () => {
    const db = newDb(`${schema}; CREATE TABLE media (id TEXT PRIMARY KEY, kind TEXT, url TEXT)`);
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nlookups:\n  m: { table: media, get: { kind: "{{ row.media_id }}" } }\n` +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m.url }}" }\n',
      ),
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.code).toBe('DF403');
    expect(err.message).toContain('lookups.m');
  });

  it('a unique index (not the primary key) is an acceptable update key', async () => {
    const db = newDb("CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT UNIQUE, note TEXT); INSERT INTO items VALUES (1, 'k1', NULL)");
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { code: "{{ row.code }}" }\n  set: { note: x }\n`,
    );
    expect(run.summary.updated).toBe(1);
    expect(query(db, 'SELECT note FROM items')).toEqual([{ note: 'x' }]);
  });

  it.each([
    [
      'an unknown source table',
      'source: { as: row, table: nope }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n',
      'DF401',
      'nope',
    ],
    [
      'an unknown update table',
      'source: { as: row, table: items }\nupdate:\n  table: nope\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n',
      'DF401',
      'nope',
    ],
    [
      'an unknown lookup table',
      'source: { as: row, table: items }\nlookups:\n  m: { table: nope, get: { id: "{{ row.media_id }}" } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m.x }}" }\n',
      'DF401',
      'nope',
    ],
    [
      'an unknown set column',
      'source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { notes: x }\n',
      'DF405',
      'notes',
    ],
    [
      'an unknown touch column',
      'source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n  touch: { updated: "{{ now }}" }\n',
      'DF405',
      'updated',
    ],
    [
      'an unknown where column',
      'source: { as: row, table: items, where: { isNull: noet } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n',
      'DF405',
      'noet',
    ],
  ])('%s is a config error (%s) naming it', async (_what, body, code, name) => {
    const db = newDb(schema);
    const err = await rejection(runYaml(`name: t\n${sqliteTarget(db)}${body}`));
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.category).toBe('config');
    expect(err.code).toBe(code);
    expect(err.message).toContain(`\`${name}\``);
  });

  it('a missing database file is DF410 and is not created', async () => {
    const dir = tmp();
    let err: unknown;
    try {
      createSqliteAdapter(sqliteTargetOf(dir.file('missing.db')));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).code).toBe('DF410');
    expect((err as DatafixError).message).toContain('missing.db');
    expect(existsSync(dir.file('missing.db'))).toBe(false);
  });
});

describe('a locked database', () => {
  const SAMPLE = "CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT); INSERT INTO items VALUES ('a', NULL), ('b', NULL)";
  const specFile = (db: string, busy: number) =>
    tmp().write(
      'fix.yaml',
      `name: t\n${sqliteTarget(db, `    busyTimeoutMs: ${busy}\n`)}source: { as: row, table: items, where: { isNull: note } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: filled }\n`,
    );

  it('held EXCLUSIVE by another connection: with busyTimeoutMs 200 the run fails within about that time and changes no row', async () => {
    const db = newDb(SAMPLE);
    const holder = openDb(db);
    holder.exec('BEGIN EXCLUSIVE');
    const started = Date.now();
    try {
      await expect(runSpecFile(specFile(db, 200), { dryRun: false })).rejects.toThrow(/locked/);
      // The default busy timeout is 5000 ms; on a stalling machine the bound stretches with it.
      expect(Date.now() - started).toBeLessThan(3000 * TIME_SCALE);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  // The schema check runs under the busy timeout like every other statement: a database locked by
  // another process is DF411 (exit 2), never a raw SQLITE_BUSY (an internal error, exit 3).
  it('held EXCLUSIVE by another connection: the error is DF411 with a clear message', async () => {
    const db = newDb(SAMPLE);
    const holder = openDb(db);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const err = await rejection(runSpecFile(specFile(db, 200), { dryRun: false }));
      expect(err).toBeInstanceOf(DatafixError);
      expect(err.code).toBe('DF411');
      expect(err.message).toContain('busyTimeoutMs');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('write-locked (BEGIN IMMEDIATE) by another connection: reads work, the write fails with DF411 and nothing is half-written', async () => {
    const db = newDb(SAMPLE);
    const holder = openDb(db);
    holder.exec('BEGIN IMMEDIATE');
    try {
      const err = await rejection(runSpecFile(specFile(db, 200), { dryRun: false }));
      expect(err).toBeInstanceOf(DatafixError);
      expect(err.code).toBe('DF411');
      expect(err.category).toBe('connection');
      expect(err.message).toMatch(/locked.*200 ms/);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('a lock released within the busy timeout is waited for, and the run succeeds', async () => {
    const db = newDb(SAMPLE);
    // The lock holder must be another process: better-sqlite3 waits synchronously, so a holder in
    // this process could never release while we wait.
    const holder = spawn(
      process.execPath,
      [
        '-e',
        `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(db)}); d.exec('BEGIN EXCLUSIVE');
         process.stdout.write('locked\\n'); setTimeout(() => { d.exec('COMMIT'); d.close(); }, ${400 * TIME_SCALE});`,
      ],
      { cwd: new URL('../../', import.meta.url), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const started = Date.now();
    const result = await runSpecFile(specFile(db, 10_000 * TIME_SCALE), { dryRun: false });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(result.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note = ?', ['filled'])).toEqual([{ n: 2 }]);
    await exited;
  });
});

describe('large integers', () => {
  const big = 'CREATE TABLE big (id INTEGER PRIMARY KEY, v INTEGER, copy INTEGER, txt TEXT)';

  it('integers beyond 2^53 are read, paged, copied and interpolated exactly', async () => {
    const db = tmp().file('big.db');
    createDb(db, big);
    const conn = openDb(db, { safeIntegers: true });
    const ins = conn.prepare('INSERT INTO big (id, v) VALUES (?, ?)');
    ins.run(9223372036854775805n, 9007199254740993n);
    ins.run(9223372036854775806n, -9223372036854775808n);
    ins.run(9223372036854775807n, 9223372036854775807n);
    conn.close();
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: big, pageSize: 1 }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { copy: "{{ row.v }}", txt: "v={{ row.v }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 3, updated: 3 });
    expect(run.records.map((r) => r.key.id)).toEqual([9223372036854775805n, 9223372036854775806n, 9223372036854775807n]);
    expect(query(db, 'SELECT id, v, copy, txt FROM big ORDER BY id', [], { safeIntegers: true })).toEqual([
      { id: 9223372036854775805n, v: 9007199254740993n, copy: 9007199254740993n, txt: 'v=9007199254740993' },
      { id: 9223372036854775806n, v: -9223372036854775808n, copy: -9223372036854775808n, txt: 'v=-9223372036854775808' },
      { id: 9223372036854775807n, v: 9223372036854775807n, copy: 9223372036854775807n, txt: 'v=9223372036854775807' },
    ]);
  });

  it('overwrite compares big integers exactly: 2^53+1 vs 2^53 differ, equal values are no_change', async () => {
    const db = tmp().file('big.db');
    createDb(db, big);
    const conn = openDb(db, { safeIntegers: true });
    const ins = conn.prepare('INSERT INTO big (id, v, copy) VALUES (?, ?, ?)');
    ins.run(1n, 9007199254740993n, 9007199254740992n); // differ by one beyond 2^53
    ins.run(2n, 9007199254740993n, 9007199254740993n); // equal
    conn.close();
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: big }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { copy: "{{ row.v }}" }\n  overwrite: true\n`,
    );
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'updated' });
    expect(run.outcomes.get(2)).toMatchObject({ outcome: 'skipped', reason: 'no_change' });
    expect(query(db, 'SELECT id, copy FROM big ORDER BY id', [], { safeIntegers: true })).toEqual([
      { id: 1n, copy: 9007199254740993n },
      { id: 2n, copy: 9007199254740993n },
    ]);
  });

  // An integer literal beyond 2^53 in a spec must be kept exactly (or refused): rounded to the
  // nearest double it would select a different row.
  it('an integer literal beyond 2^53 in a spec selects exactly that row (or the spec is refused)', async () => {
    const db = tmp().file('big.db');
    createDb(db, 'CREATE TABLE big (id INTEGER PRIMARY KEY, note TEXT)');
    const conn = openDb(db, { safeIntegers: true });
    conn.prepare('INSERT INTO big VALUES (?, NULL), (?, NULL)').run(9007199254740992n, 9007199254740993n);
    conn.close();
    let ids: unknown[] = [];
    try {
      const run = await runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: big, where: { equals: { id: 9007199254740993 } } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: hit }\n`,
        { dryRun: true },
      );
      ids = run.records.map((r) => r.key.id);
    } catch (err) {
      expect(err).toBeInstanceOf(DatafixError);
      return;
    }
    expect(ids).toEqual([9007199254740993n]);
  });

  // better-sqlite3 binds JS numbers as REAL: an INTEGER read from SQLite must be written back as an
  // integer, or 7 copied into a TEXT column becomes '7.0' and a lookup of the TEXT key '7' misses.
  it('an integer stays an integer: copied into a TEXT column it is "7", and it finds the TEXT key "7" in a lookup', async () => {
    const db = newDb(
      "CREATE TABLE media (id TEXT PRIMARY KEY, url TEXT); INSERT INTO media VALUES ('7', 'https://cdn/7.jpg');" +
        'CREATE TABLE videos (id INTEGER PRIMARY KEY, media_id INTEGER, media_ref TEXT, url TEXT); INSERT INTO videos VALUES (1, 7, NULL, NULL)',
    );
    await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: v, table: videos }\nlookups:\n  media: { table: media, get: { id: "{{ v.media_id }}" } }\n` +
        'update:\n  key: { id: "{{ v.id }}" }\n  set: { media_ref: "{{ v.media_id }}", url: "{{ media.url }}" }\n',
    );
    expect(query(db, 'SELECT media_ref, url FROM videos')).toEqual([{ media_ref: '7', url: 'https://cdn/7.jpg' }]);
  });
});

describe('dry runs', () => {
  it('open the file read-only: a dry run leaves the bytes identical, and a write on a read-only adapter changes nothing', async () => {
    const db = newDb("CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT); INSERT INTO items VALUES ('a', NULL), ('b', NULL)");
    const before = sha256File(db);
    const file = tmp().write(
      'fix.yaml',
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
    );
    const result = await runSpecFile(file, { dryRun: true });
    expect(result.summary).toMatchObject({ dryRun: true, total: 2, updated: 2 });
    expect(result.requests.update ?? 0).toBe(0);
    expect(sha256File(db)).toBe(before);

    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      const results = await adapter
        .write([{ table: 'items', key: { id: 'a' }, fields: [{ name: 'note', value: 'x', guard: 'absent' }] }], { concurrency: 1 })
        .catch((e: Error) => [{ status: 'threw', message: e.message }]);
      expect(results[0]?.status).not.toBe('applied');
    } finally {
      await adapter.close();
    }
    expect(sha256File(db)).toBe(before);
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('--limit: exactly N source records are handled and changed', async () => {
    const values = Array.from({ length: 30 }, (_, i) => `('r${String(i).padStart(2, '0')}', NULL)`);
    const db = newDb(`CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT); INSERT INTO items VALUES ${values.join(',')}`);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, pageSize: 4 }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
      { limit: 9 },
    );
    expect(run.summary).toMatchObject({ total: 9, updated: 9 });
    expect(query(db, 'SELECT id FROM items WHERE note IS NOT NULL ORDER BY id').map((r) => r.id)).toEqual(
      Array.from({ length: 9 }, (_, i) => `r0${i}`),
    );
  });
});
