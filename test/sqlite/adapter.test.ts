/**
 * The SQLite adapter on real database files: keyset paging, keys, `where` compilation, values that
 * look like SQL, guarded writes (conflict, not_found), schema checks, locks, big integers and
 * read-only dry runs. Assertions are on the rows, read back through an independent connection.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { Adapter, WriteRequest } from '../../src/adapters/types.js';
import { runSpecFile } from '../../src/api.js';
import { evaluate } from '../../src/engine/context.js';
import { DatafixError } from '../../src/errors.js';
import { TIME_SCALE } from '../helpers/time-scale.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createAppDb, createDb, openDb, query, type Row, rowsById, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** A database made as an application makes it, with its own collation and function (`createAppDb`). */
function appDb(sql: string): string {
  const db = tmp().file('app.db');
  createAppDb(db, sql);
  return db;
}
const NOW = new Date('2030-01-02T03:04:05.000Z');

function newDb(sql: string): string {
  const path = tmp().file('test.db');
  createDb(path, sql);
  return path;
}

const sqliteTargetOf = (path: string, busyTimeoutMs = 5000) => ({ backend: 'sqlite' as const, path, busyTimeoutMs });

/** Row sizes (characters of text, bytes of a blob) for the tests of pages bounded by bytes. */
const PAGE_SIZES = [1000, 3000, 500, 2500, 4000, 10];

/** The ids of each page of `items` read with pages of `pageBytes` bytes, and every row's body. */
async function pagesOf(db: string, pageBytes: number): Promise<{ pages: unknown[][]; bodies: unknown[] }> {
  const plan = compileYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { body: 1 }\n`,
  );
  const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
  try {
    const pages: unknown[][] = [];
    const bodies: unknown[] = [];
    for await (const p of adapter.readPages(plan.source, { pageSize: 100, pageBytes })) {
      pages.push(p.records.map((r) => r.key.id));
      bodies.push(...p.records.map((r) => r.item.body));
    }
    return { pages, bodies };
  } finally {
    await adapter.close();
  }
}

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

  it('BLOB rows count by their bytes toward pageBytes, as text counts by its length', async () => {
    // Blobs of the same sizes as the text below: the pages end at the same rows.
    const db = newDb(
      `CREATE TABLE items (id INTEGER PRIMARY KEY, body BLOB); INSERT INTO items VALUES ${PAGE_SIZES.map((n, i) => `(${i + 1}, zeroblob(${n}))`).join(', ')}`,
    );
    const { pages, bodies } = await pagesOf(db, 4000);
    expect(pages).toEqual([[1, 2], [3, 4, 5], [6]]);
    expect(bodies.every((b) => b instanceof Uint8Array)).toBe(true);
  });

  it('a page ends once its rows hold pageBytes, so large rows are read a few at a time, and none is lost', async () => {
    // Rows of 1000, 3000, 500, 2500, 4000 and 10 characters; pages end at 4000 bytes as read.
    const sizes = PAGE_SIZES;
    const db = newDb(
      `CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO items VALUES ${sizes.map((n, i) => `(${i + 1}, printf('%.${n}c', 'x'))`).join(', ')}`,
    );
    expect(query(db, 'SELECT length(body) AS n FROM items ORDER BY id').map((r) => r.n)).toEqual(sizes);
    expect((await pagesOf(db, 4000)).pages).toEqual([[1, 2], [3, 4, 5], [6]]);
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { body: 1 }\n`,
    );
    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      const pages = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 100, pageBytes: 4000 })) pages.push(p);
      // 1000+3000 reaches 4000; 500+2500+4000 passes it; 10 is the rest. A row over the bound is a page alone.
      expect(pages.at(-1)?.cursor).toBeUndefined();
      const resumed = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 100, pageBytes: 4000, cursor: pages[0]?.cursor }))
        resumed.push(...p.records.map((r) => r.key.id));
      expect(resumed).toEqual([3, 4, 5, 6]);
      const single = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 100, pageBytes: 1 })) single.push(p.records.length);
      expect(single).toEqual([1, 1, 1, 1, 1, 1]);
    } finally {
      await adapter.close();
    }
  });

  it.each([
    [
      'INTEGER keys beyond 2^53',
      'id INTEGER PRIMARY KEY',
      ['4611686018427387904', '4611686018427387905', '4611686018427387906', '4611686018427387907'],
    ],
    ['whole REAL keys', 'id REAL PRIMARY KEY', ['1.0', '2.0', '3.0', '164.0']],
    ['TEXT keys that look like numbers', 'id TEXT PRIMARY KEY', ["'1'", "'10'", "'2'", "'20'"]],
  ])('a cursor stored as JSON resumes exactly after its page (%s)', async (_what, column, keys) => {
    const db = newDb(`CREATE TABLE items (${column}, v TEXT); INSERT INTO items VALUES ${keys.map((k) => `(${k}, 'x')`).join(', ')}`);
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { v: 1 }\n`,
    );
    // SQLite's own order and values, as text of each key's exact value.
    const all = (query(db, 'SELECT CAST(id AS TEXT) AS k FROM items ORDER BY id', [], { safeIntegers: true }) as { k: string }[]).map(
      (r) => r.k,
    );
    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      let cursor: unknown;
      for await (const p of adapter.readPages(plan.source, { pageSize: 2 })) {
        cursor = p.cursor;
        break;
      }
      // What a checkpoint and a state file do with it.
      const stored = JSON.parse(JSON.stringify(cursor));
      const resumed: string[] = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 2, cursor: stored })) {
        resumed.push(...p.records.map((r) => String(r.key.id)));
      }
      expect(resumed).toEqual(all.slice(2));
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
    const db = appDb(
      "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT COLLATE app_order, note TEXT); INSERT INTO items VALUES ('a', 'x', NULL), ('b', 'y', NULL);",
    );
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

  it.each([
    [
      'a skip rule',
      'skip:\n  - { reason: r, when: { equals: { row.actve: 1 } } }\n',
      'skip.0.when: `row.actve` reads column `actve`',
      '/skip/0/when',
    ],
    [
      'an exists rule',
      'skip:\n  - { reason: r, when: { exists: row.actve } }\n',
      'skip.0.when: `row.actve` reads column `actve`',
      '/skip/0/when',
    ],
    [
      'a lookup row',
      'skip:\n  - { reason: r, when: { missing: m.urll } }\n',
      'skip.0.when: `m.urll` reads column `urll`, which table `media`',
      '/skip/0/when',
    ],
  ])(
    'a reference to a column the table lacks (%s) is DF405 before anything is read, not a missing value',
    async (_what, rule, message, path) => {
      const db = newDb(`${schema}; CREATE TABLE media (id TEXT PRIMARY KEY, url TEXT); INSERT INTO media VALUES ('m', 'u')`);
      const err = await rejection(
        runYaml(
          `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nlookups:\n  m: { table: media, get: { id: "{{ row.media_id }}" } }\n${rule}` +
            'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m.url }}" }\n',
        ),
      );
      expect(err).toMatchObject({ code: 'DF405', diagnostics: [{ path }] });
      expect(err.message).toContain(message);
      expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
    },
  );

  it.each([
    [
      'a BINARY unique index over a NOCASE column',
      "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, note TEXT); CREATE UNIQUE INDEX u_email ON u (email COLLATE BINARY); INSERT INTO u VALUES (1, 'a@x.io', NULL), (2, 'A@X.IO', NULL)",
      '(email) is unique by collation BINARY, but `email` compares by its own',
    ],
    [
      'a partial unique index',
      "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT, active INTEGER, note TEXT); CREATE UNIQUE INDEX u_email ON u (email) WHERE active = 1; INSERT INTO u VALUES (1, 'a@x.io', 1, NULL), (2, 'a@x.io', 0, NULL)",
      "(email) is unique only where its index `u_email`'s WHERE holds",
    ],
  ])('an update key unique only by %s is DF403: `key = ?` would match both rows', async (_what, schema, why) => {
    const db = newDb(`${schema}; CREATE TABLE src (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO src VALUES (1, 'a@x.io')`);
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: s, table: src }\nupdate:\n  table: u\n  key: { email: "{{ s.email }}" }\n  set: { note: n }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF403', diagnostics: [{ path: '/update/key' }] });
    expect(err.message).toContain(why);
    expect(err.message).toContain('key by (id)');
    // SQLite itself: the key matches two rows.
    expect(query(db, "SELECT count(*) AS n FROM u WHERE email = 'a@x.io'")).toEqual([{ n: 2 }]);
    expect(query(db, 'SELECT count(*) AS n FROM u WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('a BINARY primary key over a NOCASE column pages by the key as its index orders it: every row is read once', async () => {
    const db = newDb(
      "CREATE TABLE w (email TEXT COLLATE NOCASE, note TEXT, PRIMARY KEY (email COLLATE BINARY)) WITHOUT ROWID; INSERT INTO w VALUES ('A@X.IO', NULL), ('a@x.io', NULL), ('B@x.io', NULL), ('b@X.io', NULL)",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: r, table: w, pageSize: 1 }\nupdate:\n  key: { email: "{{ r.email }}" }\n  set: { note: n }\n`,
    ).catch((e: unknown) => e);
    // The key itself is refused (it is not unique as `=` compares it), but only after paging
    // was planned; reading alone must see all four rows in the index's order.
    expect(run).toMatchObject({ code: 'DF403' });
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: r, table: w }\nupdate:\n  key: { email: "{{ r.email }}" }\n  set: { note: n }\n`,
    );
    const adapter = createSqliteAdapter(sqliteTargetOf(db), { readonly: true });
    try {
      const seen: unknown[] = [];
      for await (const p of adapter.readPages(plan.source, { pageSize: 1 })) seen.push(...p.records.map((r) => r.key.email));
      expect(seen).toEqual((query(db, 'SELECT email FROM w ORDER BY email COLLATE BINARY') as { email: string }[]).map((r) => r.email));
      expect(seen).toHaveLength(4);
    } finally {
      await adapter.close();
    }
  });

  it('rows with NULL in a primary key column are DF416 before reading, unless where leaves them out', async () => {
    const db = newDb(
      "CREATE TABLE n (k TEXT PRIMARY KEY, note TEXT); INSERT INTO n VALUES (NULL, NULL), ('x', NULL), ('y', NULL), ('z', NULL)",
    );
    const spec = (where: string) =>
      `name: t\n${sqliteTarget(db)}source: { as: r, table: n, pageSize: 1${where} }\nupdate:\n  key: { k: "{{ r.k }}" }\n  set: { note: n }\n`;
    const err = await rejection(runYaml(spec('')));
    expect(err).toMatchObject({ code: 'DF416', diagnostics: [{ path: '/source/table' }] });
    expect(err.message).toContain('Add `where: { notNull: k }` to the source');
    expect(query(db, 'SELECT count(*) AS n FROM n WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
    const run = await runYaml(spec(', where: { notNull: k }'));
    expect(run.summary).toMatchObject({ total: 3, updated: 3 });
    expect(query(db, 'SELECT k, note FROM n ORDER BY k')).toEqual([
      { k: null, note: null },
      { k: 'x', note: 'n' },
      { k: 'y', note: 'n' },
      { k: 'z', note: 'n' },
    ]);
  });

  it.each([
    [
      'an index with an application collation on a written column',
      'CREATE INDEX items_note ON items (note COLLATE app_order);',
      'no such collation sequence: app_order',
    ],
    [
      'a trigger calling an application function',
      'CREATE TRIGGER items_t AFTER UPDATE ON items BEGIN SELECT app_fn(NEW.note); END;',
      'no such function: app_fn',
    ],
  ])('%s: the update is refused before reading (DF417), not an internal error mid-run', async (_what, extra, cause) => {
    const db = appDb(`CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT); INSERT INTO items VALUES ('a', NULL); ${extra}`);
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF417', diagnostics: [{ path: '/update/set' }] });
    expect(err.message).toContain(cause);
    expect(query(db, 'SELECT count(*) AS n FROM items WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
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

  it('a dry run’s read-only connection kept out by a writer: DF411 says it only reads (no batch) and that WAL mode lets readers in', async () => {
    const db = newDb(SAMPLE);
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { isNull: note } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: filled }\n`,
    );
    const reader = createSqliteAdapter(sqliteTargetOf(db, 100), { readonly: true });
    const writer = createSqliteAdapter(sqliteTargetOf(db, 100));
    const holder = openDb(db);
    try {
      await reader.check(plan);
      await writer.check(plan);
      // Taken after the reader opened and checked the table: the wait is its read of the rows.
      holder.exec('BEGIN EXCLUSIVE');
      const read = async (adapter: Adapter) => {
        for await (const _ of adapter.readPages(plan.source, { pageSize: 10 })) {
          // nothing: the first page is the read that waits
        }
      };
      const dry = await rejection(read(reader));
      expect(dry.code).toBe('DF411');
      expect(dry.message).toBe(
        `${db} is locked by another process and stayed locked for 100 ms; this run only reads, so nothing was written. A process committing without pause can keep readers out of a database in rollback-journal mode (WAL mode lets them read meanwhile). Retry when it is free, or raise target.sqlite.busyTimeoutMs`,
      );
      // A connection that writes keeps speaking of its batch.
      const live = await rejection(read(writer));
      expect(live.code).toBe('DF411');
      expect(live.message).toContain('; nothing of the current batch was written. Retry when it is free');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      await reader.close();
      await writer.close();
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

  // An integer literal beyond 2^53 in a spec would be rounded by YAML to the nearest double and
  // select a different row: it is refused (DF008). Quoted, it is the exact number's text.
  it('an integer literal beyond 2^53 in a spec is refused with DF008; quoted, it selects exactly that row', async () => {
    const db = tmp().file('big.db');
    createDb(db, 'CREATE TABLE big (id INTEGER PRIMARY KEY, note TEXT)');
    const conn = openDb(db, { safeIntegers: true });
    conn.prepare('INSERT INTO big VALUES (?, NULL), (?, NULL)').run(9007199254740992n, 9007199254740993n);
    conn.close();
    const specWith = (id: string) =>
      `name: t\n${sqliteTarget(db)}source: { as: row, table: big, where: { equals: { id: ${id} } } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: hit }\n`;
    const refused = await runYaml(specWith('9007199254740993'), { dryRun: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DatafixError);
    expect((refused as DatafixError).diagnostics.map((d) => d.code)).toEqual(['DF008']);
    const run = await runYaml(specWith('"9007199254740993"'), { dryRun: true });
    expect(run.records.map((r) => r.key.id)).toEqual([9007199254740993n]);
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

describe('writes SQLite would turn into changes datafix does not see', () => {
  const spec = (db: string, body: string) => `name: t\n${sqliteTarget(db)}${body}`;

  it('rewriting the primary key the source is read in order of is DF419 before reading (it would never end)', async () => {
    const db = newDb("CREATE TABLE u (k TEXT PRIMARY KEY, email TEXT UNIQUE); INSERT INTO u VALUES ('a', 'a@x'), ('b', 'b@x')");
    const err = await rejection(
      runYaml(
        spec(
          db,
          'source: { as: r, table: u, pageSize: 1 }\nupdate:\n  key: { email: "{{ r.email }}" }\n  set: { k: "user_{{ r.k }}" }\n  overwrite: true\n',
        ),
      ),
    );
    expect(err).toMatchObject({ code: 'DF419', diagnostics: [{ path: '/update/set/k' }] });
    expect(query(db, 'SELECT k FROM u ORDER BY k')).toEqual([{ k: 'a' }, { k: 'b' }]);
  });

  it('a table without a primary key whose column is named rowid is DF419: its rowid cannot be paged', async () => {
    const db = newDb(
      "CREATE TABLE t (rowid INTEGER, name TEXT, v TEXT); INSERT INTO t VALUES (1, 'a', NULL), (1, 'b', NULL), (2, 'c', NULL)",
    );
    const err = await rejection(
      runYaml(spec(db, 'source: { as: r, table: t, pageSize: 1 }\nupdate:\n  key: { name: "{{ r.name }}" }\n  set: { v: x }\n')),
    );
    expect(err).toMatchObject({ code: 'DF419', diagnostics: [{ path: '/source/table' }] });
  });

  it("a column's UNIQUE ON CONFLICT REPLACE never deletes another row: the write fails alone", async () => {
    const db = newDb(
      "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE, name TEXT); INSERT INTO users VALUES (1, 'a@x', 'Alice'), (2, NULL, 'Bob'); CREATE TABLE src (id INTEGER PRIMARY KEY, user_id INTEGER, email TEXT); INSERT INTO src VALUES (1, 2, 'a@x')",
    );
    const run = await runYaml(
      spec(
        db,
        'source: { as: s, table: src }\nupdate:\n  table: users\n  key: { id: "{{ s.user_id }}" }\n  set: { email: "{{ s.email }}" }\n',
      ),
    );
    expect(run.summary).toMatchObject({ updated: 0, failed: 1, reasons: { write_failed: 1 } });
    expect(query(db, 'SELECT id, email, name FROM users ORDER BY id')).toEqual([
      { id: 1, email: 'a@x', name: 'Alice' },
      { id: 2, email: null, name: 'Bob' },
    ]);
  });

  it('a foreign key ON UPDATE SET NULL from another table is DF420: those rows would change unjournaled', async () => {
    const db = newDb(
      "CREATE TABLE users (id INTEGER PRIMARY KEY, code TEXT UNIQUE, fixed_code TEXT); INSERT INTO users VALUES (1, 'OLD', 'NEW'); CREATE TABLE orders (id INTEGER PRIMARY KEY, user_code TEXT REFERENCES users (code) ON UPDATE SET NULL); INSERT INTO orders VALUES (10, 'OLD')",
    );
    const err = await rejection(
      runYaml(
        spec(
          db,
          'source: { as: u, table: users }\nupdate:\n  key: { id: "{{ u.id }}" }\n  set: { code: "{{ u.fixed_code }}" }\n  overwrite: true\n',
        ),
      ),
    );
    expect(err).toMatchObject({ code: 'DF420', diagnostics: [{ path: '/update/set/code' }] });
    expect(err.message).toContain('`orders`.`user_code` references `users`.`code` ON UPDATE SET NULL');
    expect(query(db, 'SELECT user_code FROM orders')).toEqual([{ user_code: 'OLD' }]);
  });

  it('a NULL key that another writer adds after the check stops the read there with DF416, nothing written', async () => {
    const db = newDb("CREATE TABLE n (k TEXT PRIMARY KEY, note TEXT); INSERT INTO n VALUES ('x', NULL), ('y', NULL)");
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: r, table: n, pageSize: 1 }\nupdate:\n  key: { k: "{{ r.k }}" }\n  set: { note: n }\n`,
        {
          // After check() found no NULL key: SQLite sorts NULL first, so the first page ends on it.
          wrap: (a) => ({
            ...a,
            readPages: (source, options) => {
              const other = openDb(db);
              other.prepare('INSERT INTO n VALUES (NULL, NULL)').run();
              other.close();
              return a.readPages(source, options);
            },
          }),
        },
      ),
    );
    expect(err).toMatchObject({ code: 'DF416', category: 'config', diagnostics: [{ path: '/source/table' }] });
    expect(err.message).toMatch(/^source\.table: rows of `n` that the source selects hold NULL in primary key column `k` /);
    expect(query(db, 'SELECT count(*) AS n FROM n WHERE note IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('DF416 names every primary key column that can hold NULL, at source.table', async () => {
    const db = newDb('CREATE TABLE n (a TEXT, b TEXT, note TEXT, PRIMARY KEY (a, b)); INSERT INTO n VALUES (NULL, NULL, NULL)');
    const err = await rejection(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: r, table: n }\nupdate:\n  key: { a: "{{ r.a }}", b: "{{ r.b }}" }\n  set: { note: n }\n`,
      ),
    );
    expect(err).toMatchObject({ code: 'DF416', category: 'config' });
    expect(err.message).toBe(
      'source.table: rows of `n` that the source selects hold NULL in primary key column `a`, `b` (SQLite allows it in a table with a rowid); datafix reads in primary key order and cannot page past them. Add `where: { notNull: a }` to the source, or fix those rows first',
    );
  });

  it("a trigger's RAISE(ROLLBACK) or a broken deferred foreign key undoes the batch: the run stops with DF418 and nothing of the batch is written", async () => {
    const rollback = newDb(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, NULL), (2, NULL), (3, NULL); CREATE TRIGGER no_bad BEFORE UPDATE ON t WHEN NEW.id = 2 BEGIN SELECT RAISE(ROLLBACK, 'row 2 is frozen'); END",
    );
    const err = await rejection(
      runYaml(spec(rollback, 'source: { as: r, table: t }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: x }\n')),
    );
    expect(err).toMatchObject({ code: 'DF418', category: 'config' });
    expect(err.message).toBe(
      "writing `t` (id=2): row 2 is frozen; SQLite rolled back the whole batch (a trigger's RAISE(ROLLBACK)), so nothing of it was written. Fix that record's data or the trigger, then --resume",
    );
    expect(query(rollback, 'SELECT count(*) AS n FROM t WHERE v IS NOT NULL')).toEqual([{ n: 0 }]);

    // A composite key is named column by column.
    const composite = newDb(
      "CREATE TABLE c (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (a, b)); INSERT INTO c VALUES (1, 'x', NULL), (2, 'y', NULL); CREATE TRIGGER no_bad BEFORE UPDATE ON c WHEN NEW.a = 2 BEGIN SELECT RAISE(ROLLBACK, 'frozen'); END",
    );
    const two = await rejection(
      runYaml(spec(composite, 'source: { as: r, table: c }\nupdate:\n  key: { a: "{{ r.a }}", b: "{{ r.b }}" }\n  set: { v: x }\n')),
    );
    expect(two.message).toMatch(/^writing `c` \(a=2, b=y\): frozen; SQLite rolled back the whole batch/);
    expect(query(composite, 'SELECT count(*) AS n FROM c WHERE v IS NOT NULL')).toEqual([{ n: 0 }]);

    const deferred = newDb(
      "CREATE TABLE users (code TEXT PRIMARY KEY); INSERT INTO users VALUES ('A'); CREATE TABLE orders (id INTEGER PRIMARY KEY, want TEXT, user_code TEXT REFERENCES users (code) DEFERRABLE INITIALLY DEFERRED); INSERT INTO orders VALUES (10, 'A', NULL), (11, 'ZZZ', NULL)",
    );
    const fk = await rejection(
      runYaml(
        spec(deferred, 'source: { as: o, table: orders }\nupdate:\n  key: { id: "{{ o.id }}" }\n  set: { user_code: "{{ o.want }}" }\n'),
      ),
    );
    expect(fk).toMatchObject({ code: 'DF418', category: 'config' });
    expect(fk.message).toBe(
      `committing a batch of writes to ${deferred}: FOREIGN KEY constraint failed; SQLite rolled back the whole batch, so nothing of it was written. A record of it breaks a deferred constraint: find it with a smaller --limit or fix the data it points at, then --resume`,
    );
    expect(query(deferred, 'SELECT count(*) AS n FROM orders WHERE user_code IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('a primary key holding text not valid UTF-8 stops paging with DF419 instead of reading it again and again', async () => {
    const db = newDb(
      "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT); INSERT INTO t VALUES ('a', NULL), (CAST(x'62ff' AS TEXT), NULL), ('c', NULL), ('d', NULL)",
    );
    const err = await rejection(
      runYaml(spec(db, 'source: { as: r, table: t, pageSize: 2 }\nupdate:\n  key: { k: "{{ r.k }}" }\n  set: { v: x }\n')),
    );
    expect(err).toMatchObject({ code: 'DF419' });
  });

  it('generated columns can be read and keyed by, and writing one is DF405', async () => {
    const db = newDb(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, e_low TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL, v TEXT); INSERT INTO t (id, email) VALUES (1, 'A@X'), (2, 'b@x')",
    );
    const run = await runYaml(
      spec(
        db,
        'source: { as: r, table: t, where: { equals: { e_low: a@x } } }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: "{{ r.e_low }}" }\n',
      ),
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1 });
    expect(query(db, 'SELECT id, v FROM t ORDER BY id')).toEqual([
      { id: 1, v: 'a@x' },
      { id: 2, v: null },
    ]);
    const err = await rejection(
      runYaml(spec(db, 'source: { as: r, table: t }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { e_low: x }\n')),
    );
    expect(err).toMatchObject({ code: 'DF405', diagnostics: [{ path: '/update/set/e_low' }] });
  });

  it('a BINARY column with a NOCASE unique index is a key (its = finds one row); a primary key ordered by an application collation still pages', async () => {
    const db = newDb(
      "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT, note TEXT); CREATE UNIQUE INDEX u_email ON u (email COLLATE NOCASE); INSERT INTO u VALUES (1, 'a@x', NULL); CREATE TABLE src (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO src VALUES (1, 'a@x'), (2, 'A@X')",
    );
    const run = await runYaml(
      spec(db, 'source: { as: s, table: src }\nupdate:\n  table: u\n  key: { email: "{{ s.email }}" }\n  set: { note: "{{ s.id }}" }\n'),
    );
    // SQLite: email = 'a@x' finds row 1; email = 'A@X' (BINARY) finds none.
    expect(run.summary).toMatchObject({ updated: 1, skipped: 1, reasons: { not_found: 1 } });
    expect(query(db, 'SELECT note FROM u')).toEqual([{ note: '1' }]);

    const app = appDb(
      "CREATE TABLE t (k TEXT, v TEXT, PRIMARY KEY (k COLLATE app_order)); INSERT INTO t VALUES ('b', NULL), ('a', NULL), ('c', NULL);",
    );
    const paged = await runYaml(
      spec(app, 'source: { as: r, table: t, pageSize: 1 }\nupdate:\n  key: { k: "{{ r.k }}" }\n  set: { v: x }\n'),
    );
    expect(paged.summary).toMatchObject({ total: 3, updated: 3 });
    expect(query(app, 'SELECT count(*) AS n FROM t WHERE v IS NULL')).toEqual([{ n: 0 }]);
  });
});
