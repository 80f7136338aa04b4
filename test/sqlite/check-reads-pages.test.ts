/**
 * How the SQLite adapter reads its source, called in-process on real database files: where a
 * page ends when its rows reach `pageBytes` exactly, that a short page is the last SELECT, the
 * order of a primary key declared COLLATE NOCASE, what `count` answers with and without a
 * `where` and after a cursor, and the refusals of a read: a source the adapter cannot read
 * (DF205), a missing table (DF401), a NULL key another writer added after the check (DF416) and a
 * key holding text not valid in the database's encoding (DF419), each with its exact message.
 * Expected rows and counts are written here or asked of SQLite itself.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { Adapter, SourcePage } from '../../src/adapters/types.js';
import type { DatafixError } from '../../src/errors.js';
import type { SourcePlan } from '../../src/plan/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, openDb, query, refusal, sqliteTarget, withAdapter } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('pages.db');
  createDb(path, sql);
  return path;
}

/** The plan of an update of `table` keyed by `keys`, reading `table` as `r`. */
const planOf = (db: string, table: string, keys: readonly string[], set = 'v') =>
  compileYaml(
    `name: t\n${sqliteTarget(db)}source: { as: r, table: ${table} }\nupdate:\n  key: { ${keys.map((k) => `${k}: "{{ r.${k} }}"`).join(', ')} }\n  set: { ${set}: x }\n`,
  );

/**
 * Pages of `source` as read, at most `max` of them (a read that cannot move past a row would
 * otherwise go on for ever), and what the read threw, if anything.
 */
async function pagesOf(
  adapter: Adapter,
  source: SourcePlan,
  options: { pageSize: number; pageBytes?: number; cursor?: unknown },
  max = 10,
): Promise<{ pages: SourcePage[]; error?: unknown }> {
  const pages: SourcePage[] = [];
  try {
    for await (const page of adapter.readPages(source, options)) {
      pages.push(page);
      if (pages.length >= max) break;
    }
  } catch (error) {
    return { pages, error };
  }
  return { pages };
}

const keysOf = (pages: readonly SourcePage[], ...cols: string[]) =>
  pages.map((p) => p.records.map((r) => cols.map((c) => r.key[c]).join('/')));

describe('a lock another process takes between pages', () => {
  it('is DF411 (retry), not a row SQLite cannot read: the pages before were read', async () => {
    const db = newDb(`CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const plan = planOf(db, 'items', ['id']);
    const adapter = createSqliteAdapter({ backend: 'sqlite', path: db, busyTimeoutMs: 50 });
    const other = openDb(db);
    try {
      await adapter.check(plan);
      const pages = adapter.readPages(plan.source, { pageSize: 1 })[Symbol.asyncIterator]();
      const first = await pages.next();
      expect(first.done).toBe(false);
      other.exec('BEGIN EXCLUSIVE');
      const err = await pages.next().then(
        () => undefined,
        (e: unknown) => e as DatafixError,
      );
      expect([err?.code, err?.category]).toEqual(['DF411', 'connection']);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await adapter.close();
    }
  });
});

describe('where a page ends', () => {
  // Each row is 100 bytes as read: its INTEGER id counts 8, its text 92 characters.
  const rows100 = `CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO items VALUES ${[1, 2, 3, 4].map((i) => `(${i}, printf('%.92c', 'x'))`).join(', ')}`;

  it('a page whose rows reach pageBytes exactly ends there, and the read goes on after it: no row is lost', async () => {
    const db = newDb(rows100);
    expect(query(db, 'SELECT DISTINCT length(body) AS n FROM items')).toEqual([{ n: 92 }]);
    const plan = planOf(db, 'items', ['id'], 'body');
    const { pages, error } = await withAdapter(db, (a) => pagesOf(a, plan.source, { pageSize: 10, pageBytes: 200 }));
    expect(error).toBeUndefined();
    expect(keysOf(pages, 'id')).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    // A page ended by its bytes is not known to be the last: it hands on a cursor.
    expect(pages.map((p) => p.cursor)).toEqual([[2], [4]]);
  });

  it('a short page is the last: three rows in pages of two take two SELECTs, four rows take three', async () => {
    const db = newDb(rows100);
    const plan = planOf(db, 'items', ['id'], 'body');
    await withAdapter(db, async (a) => {
      const { pages } = await pagesOf(a, plan.source, { pageSize: 2 });
      expect(keysOf(pages, 'id')).toEqual([
        ['1', '2'],
        ['3', '4'],
      ]);
      // Four rows: the second page is full, so a third SELECT finds nothing.
      expect(a.stats()).toEqual({ select: 3 });
    });
    const other = openDb(db);
    other.prepare('DELETE FROM items WHERE id = 4').run();
    other.close();
    await withAdapter(db, async (a) => {
      const { pages } = await pagesOf(a, plan.source, { pageSize: 2 });
      expect(keysOf(pages, 'id')).toEqual([['1', '2'], ['3']]);
      expect(pages.at(-1)?.cursor).toBeUndefined();
      expect(a.stats()).toEqual({ select: 2 });
    });
  });
});

describe('key order', () => {
  it('a primary key declared COLLATE NOCASE is read in NOCASE order, as SQLite orders it, and counted after a cursor in that order', async () => {
    const db = newDb(
      "CREATE TABLE t (k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT); INSERT INTO t VALUES ('B', NULL), ('a', NULL), ('C', NULL), ('d', NULL)",
    );
    const order = query<{ k: string }>(db, 'SELECT k FROM t ORDER BY k').map((r) => r.k);
    expect(order).toEqual(['a', 'B', 'C', 'd']);
    const after = query<{ n: number }>(db, "SELECT count(*) AS n FROM t WHERE k > 'B'")[0]?.n;
    expect(after).toBe(2);
    const plan = planOf(db, 't', ['k']);
    await withAdapter(db, async (a) => {
      const { pages, error } = await pagesOf(a, plan.source, { pageSize: 2 });
      expect(error).toBeUndefined();
      expect(keysOf(pages, 'k')).toEqual([order.slice(0, 2), order.slice(2)]);
      expect(await a.count?.(plan.source, { cursor: ['B'] })).toEqual({ records: after, estimate: false });
    });
  });
});

describe('count', () => {
  const schema =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO items VALUES (10, 'a'), (20, 'b'), (30, 'a'), (40, 'b'), (50, 'b'), (60, NULL)";
  const n = (db: string, sql: string) => query<{ n: number }>(db, sql)[0]?.n;

  it('without a where: every row, or every row after the cursor; each count is one statement', async () => {
    const db = newDb(schema);
    const plan = planOf(db, 'items', ['id']);
    await withAdapter(db, async (a) => {
      expect(await a.count?.(plan.source, {})).toEqual({ records: n(db, 'SELECT count(*) AS n FROM items'), estimate: false });
      expect(await a.count?.(plan.source, { cursor: [20] })).toEqual({
        records: n(db, 'SELECT count(*) AS n FROM items WHERE id > 20'),
        estimate: false,
      });
      expect(a.stats()).toEqual({ count: 2 });
    });
  });

  it('with a where that binds a value: the rows it selects, from the start and after the cursor', async () => {
    const db = newDb(schema);
    const plan = compileYaml(
      `name: t\n${sqliteTarget(db)}source: { as: r, table: items, where: { equals: { v: b } } }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { v: x }\n`,
    );
    await withAdapter(db, async (a) => {
      expect(await a.count?.(plan.source, {})).toEqual({
        records: n(db, "SELECT count(*) AS n FROM items WHERE v = 'b'"),
        estimate: false,
      });
      expect(await a.count?.(plan.source, { cursor: [20] })).toEqual({
        records: n(db, "SELECT count(*) AS n FROM items WHERE v = 'b' AND id > 20"),
        estimate: false,
      });
    });
  });
});

describe('refusals of a read', () => {
  it('a source that is not a table (a plan built for DynamoDB) is DF205, a config error', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)');
    const source: SourcePlan = {
      kind: 'query',
      as: 'r',
      partitionKey: { name: 'PK', value: 'X' },
      newestFirst: false,
      consistentRead: false,
    };
    const err = await withAdapter(db, (a) => refusal(a.count?.(source, {}) ?? Promise.resolve()));
    expect(err).toMatchObject({ category: 'config', code: 'DF205', message: 'a SQLite target reads with source.table' });
  });

  it('a table that does not exist, read without a check first, is DF401 at source.table', async () => {
    const db = newDb('CREATE TABLE others (id INTEGER PRIMARY KEY, v TEXT)');
    const source: SourcePlan = { kind: 'table', as: 'r', table: 'items' };
    const counted = await withAdapter(db, (a) => refusal(a.count?.(source, {}) ?? Promise.resolve()));
    const read = await withAdapter(db, async (a) => (await pagesOf(a, source, { pageSize: 5 })).error);
    for (const err of [counted, read]) {
      expect(err).toMatchObject({
        category: 'config',
        code: 'DF401',
        message: `source.table: table \`items\` does not exist in ${db}; check the name against the database's tables`,
      });
      expect((err as { diagnostics: { path?: string }[] }).diagnostics.map((d) => d.path)).toEqual(['/source/table']);
    }
  });

  it('a NULL in a composite key, added by another writer after the check, stops the read at that page with DF416 naming the key', async () => {
    const db = newDb(
      "CREATE TABLE n (a TEXT, b TEXT, v TEXT, PRIMARY KEY (a, b)); INSERT INTO n VALUES ('a', '1', NULL), ('x', '1', NULL), ('y', '1', NULL)",
    );
    const plan = planOf(db, 'n', ['a', 'b']);
    const { pages, error } = await withAdapter(db, async (a) => {
      await a.check(plan);
      // SQLite sorts NULL first: ('x', NULL) comes right after ('a', '1').
      const other = openDb(db);
      other.prepare("INSERT INTO n VALUES ('x', NULL, NULL)").run();
      other.close();
      return pagesOf(a, plan.source, { pageSize: 1 });
    });
    expect(keysOf(pages, 'a', 'b')).toEqual([['a/1']]);
    expect(error).toMatchObject({ category: 'config', code: 'DF416' });
    expect((error as Error).message).toBe(
      'source.table: rows of `n` that the source selects hold NULL in primary key column `a`, `b` (SQLite allows it in a table with a rowid); datafix reads in primary key order and cannot page past them. Add `where: { notNull: a }` to the source, or fix those rows first',
    );
    expect(query(db, 'SELECT count(*) AS n FROM n WHERE v IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('text not valid UTF-8 in one column of a composite key stops the read with DF419 naming the table and its key', async () => {
    const db = newDb(
      "CREATE TABLE t (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)); INSERT INTO t VALUES ('a', 1, NULL), (CAST(x'62ff' AS TEXT), 2, NULL), ('c', 3, NULL), ('d', 4, NULL)",
    );
    const plan = planOf(db, 't', ['a', 'b']);
    const { pages, error } = await withAdapter(db, async (a) => {
      await a.check(plan);
      return pagesOf(a, plan.source, { pageSize: 2 });
    });
    // The first page ends on that key: it is not handed on as a cursor that would match other bytes.
    expect(pages).toEqual([]);
    expect(error).toMatchObject({ category: 'config', code: 'DF419' });
    expect((error as Error).message).toBe(
      "`t`: a primary key (a, b) holds text that is not valid in the database's encoding; datafix reads in key order and cannot page past it. Fix that key first; rows before it were handled, and --resume continues from the last checkpoint",
    );
  });
});
