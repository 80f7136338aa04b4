/**
 * What datafix learns of a SQLite table's keys from the table itself, as a user sees it: the
 * order a source is read in (a composite primary key declared in another order than its columns,
 * a NOCASE primary key), and the DF403 refusal of a key that could match several rows, word for
 * word: which keys it offers instead (the primary key first, then the unique indexes, no rowid
 * where the table has a primary key, the rowid where it has none and no column hides it) and
 * why a unique index is not one (partial, another collation, an expression). A table whose name
 * is not a plain identifier is not one datafix reads (DF401), even where the file has it.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { SourcePlan } from '../../src/plan/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, refusal, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('keys.db');
  createDb(path, sql);
  return path;
}

const targetOf = (path: string) => ({ backend: 'sqlite' as const, path, busyTimeoutMs: 5000 });

/** Every record a read-only adapter reads from `table`, page by page (pages of 2), as its key's values in `cols` order. */
async function readKeys(path: string, table: string, cols: string[]): Promise<unknown[][][]> {
  const adapter = createSqliteAdapter(targetOf(path), { readonly: true });
  try {
    const source: SourcePlan = { kind: 'table', as: 'row', table };
    const pages: unknown[][][] = [];
    for await (const p of adapter.readPages(source, { pageSize: 2 })) pages.push(p.records.map((r) => cols.map((c) => r.key[c])));
    return pages;
  } finally {
    await adapter.close();
  }
}

/**
 * check() of a fix over `src` (an INTEGER PRIMARY KEY table) with one lookup `l` of a row of
 * `table` by `get`, the refusal it ends in.
 */
async function lookupRefusal(schema: string, table: string, get: string) {
  const path = newDb(`CREATE TABLE src (id INTEGER PRIMARY KEY, note TEXT); ${schema}`);
  const plan = compileYaml(
    `name: t\n${sqliteTarget(path)}source: { as: s, table: src }\n` +
      `lookups:\n  l: { table: ${table}, get: ${get} }\n` +
      'update:\n  key: { id: "{{ s.id }}" }\n  set: { note: "{{ l.id }}" }\n',
  );
  const adapter = createSqliteAdapter(targetOf(path), { readonly: true });
  try {
    const err = await refusal(adapter.check(plan));
    return { code: err.code, message: err.message, at: err.diagnostics.map((d) => d.path) };
  } finally {
    await adapter.close();
  }
}

describe('the order a source is read in', () => {
  it('a composite primary key declared (b, a) over columns (a, b) is read by b, then a', async () => {
    const path = newDb(
      'CREATE TABLE pairs (a TEXT, b TEXT, v TEXT, PRIMARY KEY (b, a)); ' +
        "INSERT INTO pairs VALUES ('1', 'z', 'p'), ('2', 'y', 'q'), ('3', 'x', 'r'), ('0', 'y', 's'), ('4', 'w', 't')",
    );
    // By b, then a: w, x, y (0 before 2), z. By a, then b it would be 0, 1, 2, 3, 4.
    expect(await readKeys(path, 'pairs', ['b', 'a'])).toEqual([
      [
        ['w', '4'],
        ['x', '3'],
      ],
      [
        ['y', '0'],
        ['y', '2'],
      ],
      [['z', '1']],
    ]);
  });

  it('a TEXT COLLATE NOCASE primary key is read in NOCASE order (b, C, d), not byte order (C, b, d), across pages', async () => {
    const path = newDb(
      "CREATE TABLE tags (name TEXT COLLATE NOCASE PRIMARY KEY, v TEXT); INSERT INTO tags VALUES ('d', 1), ('C', 2), ('b', 3), ('A', 4), ('e', 5)",
    );
    expect(await readKeys(path, 'tags', ['name'])).toEqual([[['A'], ['b']], [['C'], ['d']], [['e']]]);
  });

  it('a table whose name is not a plain identifier is refused as missing (DF401), even where the file has it', async () => {
    const path = newDb(`CREATE TABLE "my-table" (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO "my-table" VALUES (1, 'a')`);
    const err = await refusal(readKeys(path, 'my-table', ['id']));
    expect([err.code, err.message]).toEqual([
      'DF401',
      `source.table: table \`my-table\` does not exist in ${path}; check the name against the database's tables`,
    ]);
  });
});

describe('a lookup key that is not unique (DF403), and the keys offered instead', () => {
  it('a TEXT primary key and two unique indexes: the primary key first, each once, no rowid; a plain index is no key', async () => {
    expect(
      await lookupRefusal(
        'CREATE TABLE people (id TEXT PRIMARY KEY, email TEXT, code TEXT UNIQUE, handle TEXT UNIQUE); CREATE INDEX people_email ON people(email);',
        'people',
        '{ email: "{{ s.note }}" }',
      ),
    ).toEqual({
      code: 'DF403',
      message:
        'lookups.l.get: (email) is not the primary key or a unique index of `people`, so it could match several rows; key by (id) or (handle) or (code)',
      at: ['/lookups/l/get'],
    });
  });

  it('a table without a primary key offers its rowid, and only it', async () => {
    expect(await lookupRefusal('CREATE TABLE logs (msg TEXT, at TEXT);', 'logs', '{ msg: "{{ s.note }}" }')).toEqual({
      code: 'DF403',
      message: 'lookups.l.get: (msg) is not the primary key or a unique index of `logs`, so it could match several rows; key by (rowid)',
      at: ['/lookups/l/get'],
    });
  });

  it('a table without a primary key whose column is named rowid has no key to offer: that column is not the rowid', async () => {
    expect(await lookupRefusal('CREATE TABLE legacy (rowid TEXT, v TEXT);', 'legacy', '{ rowid: "{{ s.note }}" }')).toEqual({
      code: 'DF403',
      message:
        'lookups.l.get: (rowid) is not the primary key or a unique index of `legacy`, so it could match several rows; key by a unique column',
      at: ['/lookups/l/get'],
    });
  });

  it('a partial unique index over two columns is named as unique only where its WHERE holds', async () => {
    expect(
      await lookupRefusal(
        'CREATE TABLE codes (id INTEGER PRIMARY KEY, a TEXT, b TEXT); CREATE UNIQUE INDEX codes_ab ON codes(a, b) WHERE a IS NOT NULL;',
        'codes',
        '{ a: "{{ s.note }}", b: "{{ s.note }}" }',
      ),
    ).toEqual({
      code: 'DF403',
      message:
        "lookups.l.get: (a, b) is not the primary key or a unique index of `codes`, so it could match several rows ((a, b) is unique only where its index `codes_ab`'s WHERE holds); key by (id)",
      at: ['/lookups/l/get'],
    });
  });

  it('a unique index over two columns that compares a NOCASE column by BINARY is named with the column that compares by its own', async () => {
    expect(
      await lookupRefusal(
        'CREATE TABLE codes (id INTEGER PRIMARY KEY, a TEXT, b TEXT COLLATE NOCASE); CREATE UNIQUE INDEX codes_ab ON codes(a, b COLLATE BINARY);',
        'codes',
        '{ a: "{{ s.note }}", b: "{{ s.note }}" }',
      ),
    ).toEqual({
      code: 'DF403',
      message:
        'lookups.l.get: (a, b) is not the primary key or a unique index of `codes`, so it could match several rows ((a, b) is unique by collation BINARY, but `b` compares by its own); key by (id)',
      at: ['/lookups/l/get'],
    });
  });

  it('a unique index over a column and an expression is no key of that column, nor offered as one', async () => {
    expect(
      await lookupRefusal(
        'CREATE TABLE codes (id INTEGER PRIMARY KEY, a TEXT, b TEXT); CREATE UNIQUE INDEX codes_a_lb ON codes(a, lower(b));',
        'codes',
        '{ a: "{{ s.note }}" }',
      ),
    ).toEqual({
      code: 'DF403',
      message: 'lookups.l.get: (a) is not the primary key or a unique index of `codes`, so it could match several rows; key by (id)',
      at: ['/lookups/l/get'],
    });
  });
});
