/**
 * The SQLite adapter's writes, asked directly as the engine and undo ask them: one transaction a
 * batch, each record's guard checked in it, and what each outcome leaves in the database (read
 * back through an independent connection). Also how a database file is opened (DF410).
 */
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { WriteRequest } from '../../src/adapters/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, openDb, query, refusal } from './fixtures.js';

const tmp = useTempDirs();

const targetOf = (path: string) => ({ backend: 'sqlite' as const, path, busyTimeoutMs: 5000 });

function newDb(sql: string): string {
  const path = tmp().file('w.db');
  createDb(path, sql);
  return path;
}

/** One batch of `requests` written through a new adapter: the results, and the statements it counted. */
async function writeCounted(db: string, requests: WriteRequest[], checkpoint?: { id: string; cursor: string }) {
  const adapter = createSqliteAdapter(targetOf(db));
  try {
    const results = await adapter.write(requests, { concurrency: 1, ...(checkpoint ? { checkpoint } : {}) });
    return { results, stats: adapter.stats() };
  } finally {
    await adapter.close();
  }
}

async function write(db: string, requests: WriteRequest[], checkpoint?: { id: string; cursor: string }) {
  return (await writeCounted(db, requests, checkpoint)).results;
}

describe('guarded deletes and creates, as undo sends them', () => {
  it('a delete holds only while every column still has its before-image (NULL as NULL); each statement is counted', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT, tag TEXT); INSERT INTO items VALUES (1, NULL, 'a'), (2, NULL, 'b'), (3, 'x', 'c');",
    );
    const del = (id: number, note: string | null, tag: string): WriteRequest => ({
      action: 'delete',
      table: 'items',
      key: { id },
      fields: [
        { name: 'note', value: undefined, guard: 'unchanged', before: note },
        { name: 'tag', value: undefined, guard: 'unchanged', before: tag },
      ],
    });
    const other = openDb(db);
    other.prepare("UPDATE items SET note = 'filled since' WHERE id = 2").run();
    other.close();
    const adapter = createSqliteAdapter(targetOf(db));
    try {
      expect(await adapter.write([del(1, null, 'a'), del(2, null, 'b'), del(3, 'x', 'c'), del(4, null, 'd')], { concurrency: 1 })).toEqual([
        { status: 'applied' },
        { status: 'conflict' },
        { status: 'applied' },
        { status: 'not_found' },
      ]);
      expect(adapter.stats()).toEqual({ delete: 4 });
    } finally {
      await adapter.close();
    }
    expect(query(db, 'SELECT id, note FROM items')).toEqual([{ id: 2, note: 'filled since' }]);
  });

  it('a create gives the row its key (a rowid too) and lets SQLite compute generated columns; the row is stored as SQLite made it', async () => {
    const db = newDb(
      `CREATE TABLE plain (name TEXT, n INTEGER, twice INTEGER GENERATED ALWAYS AS (n * 2), made TEXT DEFAULT 'by default');
       INSERT INTO plain (rowid, name, n) VALUES (7, 'seven', 7);`,
    );
    const adapter = createSqliteAdapter(targetOf(db));
    try {
      const results = await adapter.write(
        [
          // As undo sends a deleted row back: its before-image, the generated column included.
          {
            action: 'create',
            table: 'plain',
            key: { rowid: 5 },
            fields: [
              { name: 'name', value: 'five', guard: 'absent', before: undefined },
              { name: 'n', value: 5, guard: 'absent', before: undefined },
              { name: 'twice', value: 10, guard: 'absent', before: undefined },
            ],
          },
          {
            action: 'create',
            table: 'plain',
            key: { rowid: 7 },
            fields: [{ name: 'name', value: 'again', guard: 'absent', before: undefined }],
          },
          {
            action: 'create',
            table: 'plain',
            key: { rowid: 8 },
            fields: [{ name: 'name', value: 'bad \ud800', guard: 'absent', before: undefined }],
          },
        ],
        { concurrency: 1 },
      );
      expect(results).toEqual([
        { status: 'applied', stored: { name: 'five', n: 5, twice: 10, made: 'by default' } },
        { status: 'conflict' },
        {
          status: 'failed',
          reason: 'value_not_exact',
          message: 'name: the new text has a lone UTF-16 surrogate, which SQLite cannot store as given',
        },
      ]);
      expect(adapter.stats()).toEqual({ create: 1 });
    } finally {
      await adapter.close();
    }
    expect(query(db, 'SELECT rowid, name, n, twice FROM plain ORDER BY rowid')).toEqual([
      { rowid: 5, name: 'five', n: 5, twice: 10 },
      { rowid: 7, name: 'seven', n: 7, twice: 14 },
    ]);
  });
});

describe('text that holds U+FFFD', () => {
  it('stored as valid text, it is a before-image like any other: written, and a row deleted since is not_found', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'a \uFFFD b'), (2, 'c \uFFFD d');",
    );
    const other = openDb(db);
    other.prepare('DELETE FROM items WHERE id = 2').run();
    other.close();
    const overwrite = (id: number, before: string): WriteRequest => ({
      table: 'items',
      key: { id },
      fields: [{ name: 'note', value: 'new', guard: 'unchanged', before }],
    });
    expect(await write(db, [overwrite(1, 'a \uFFFD b'), overwrite(2, 'c \uFFFD d')])).toEqual([
      { status: 'applied' },
      { status: 'not_found' },
    ]);
    expect(query(db, 'SELECT id, note FROM items')).toEqual([{ id: 1, note: 'new' }]);
  });
});

describe('a key that matches several rows when written (the schema changed since the check)', () => {
  // (code, kind) was unique when the fix was checked; its index is gone, and two rows now share ('dup', 'k').
  const SCHEMA = `CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT, kind TEXT, note TEXT);
    INSERT INTO items VALUES (1, 'one', 'k', NULL), (2, 'dup', 'k', NULL), (3, 'dup', 'k', NULL);`;

  it('an update stops the run with DF403 and nothing of the batch is written, the records before it included', async () => {
    const db = newDb(SCHEMA);
    const err = await refusal(
      write(
        db,
        [
          { table: 'items', key: { code: 'one', kind: 'k' }, fields: [{ name: 'note', value: 'a', guard: 'absent', before: null }] },
          { table: 'items', key: { code: 'dup', kind: 'k' }, fields: [{ name: 'note', value: 'b', guard: 'absent', before: null }] },
        ],
        { id: 'fix', cursor: '[3]' },
      ),
    );
    expect(err).toMatchObject({ code: 'DF403', category: 'config' });
    expect(err.message).toBe(
      'the update of `items` by (code, kind) changed 2 rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key',
    );
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: null },
      { id: 3, note: null },
    ]);
    // Nor the page's checkpoint, which commits with its writes.
    expect(query(db, "SELECT name FROM sqlite_master WHERE name = '_datafix_checkpoints'")).toEqual([]);
  });

  it('a delete stops the run with DF403 and no row is deleted, the records before it included', async () => {
    const db = newDb(SCHEMA);
    const err = await refusal(
      write(db, [
        {
          action: 'delete',
          table: 'items',
          key: { id: 1 },
          fields: [{ name: 'code', value: undefined, guard: 'unchanged', before: 'one' }],
        },
        { action: 'delete', table: 'items', key: { code: 'dup', kind: 'k' }, fields: [] },
      ]),
    );
    expect(err).toMatchObject({ code: 'DF403', category: 'config' });
    expect(err.message).toBe(
      'the delete from `items` by (code, kind) matched 2 rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key',
    );
    expect(query(db, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
  });
});

describe('a request naming a column the table does not have (a journal older than the schema, or edited)', () => {
  const SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');";

  it("fails that record alone with SQLite's reason; the other records of the batch are written", async () => {
    const db = newDb(SCHEMA);
    const { results, stats } = await writeCounted(db, [
      { table: 'items', key: { id: 1 }, fields: [{ name: 'gone', value: 'x', guard: 'unchanged', before: 'a' }] },
      { action: 'delete', table: 'items', key: { id: 2 }, fields: [{ name: 'gone', value: undefined, guard: 'unchanged', before: 'b' }] },
      { action: 'create', table: 'items', key: { id: 4 }, fields: [{ name: 'gone', value: 'd', guard: 'absent', before: undefined }] },
      { table: 'items', key: { id: 3 }, fields: [{ name: 'note', value: 'C', guard: 'unchanged', before: 'c' }] },
    ]);
    expect(results).toEqual([
      { status: 'failed', reason: 'write_rejected', message: 'no such column: gone' },
      { status: 'failed', reason: 'write_failed', message: 'no such column: "gone" - should this be a string literal in single-quotes?' },
      { status: 'failed', reason: 'write_failed', message: 'table items has no column named gone' },
      { status: 'applied' },
    ]);
    // The update SQLite could not prepare ran no statement; the others each ran one.
    expect(stats).toEqual({ update: 1, delete: 1, create: 1 });
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'a' },
      { id: 2, note: 'b' },
      { id: 3, note: 'C' },
    ]);
  });

  it('a name that is not a plain identifier is never put into SQL: write_rejected for an update, a delete and a create', async () => {
    const db = newDb(SCHEMA);
    const bad = 'note"; DROP TABLE items; --';
    const results = await write(db, [
      { table: 'items', key: { id: 1 }, fields: [{ name: bad, value: 'x', guard: 'none', before: 'a' }] },
      { action: 'delete', table: 'items', key: { id: 2 }, fields: [{ name: bad, value: undefined, guard: 'unchanged', before: 'b' }] },
      { action: 'create', table: 'items', key: { id: 4 }, fields: [{ name: bad, value: 'd', guard: 'absent', before: undefined }] },
    ]);
    const rejected = { status: 'failed', reason: 'write_rejected', message: `bad name ${JSON.stringify(bad)}` };
    expect(results).toEqual([rejected, rejected, rejected]);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'a' },
      { id: 2, note: 'b' },
      { id: 3, note: 'c' },
    ]);
  });
});

describe('checkpoints kept inside the database', () => {
  const tables = (db: string) => query(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name);

  it('are stored per fix, replaced by the next page, and the table goes once the last fix clears its row', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY)');
    const adapter = createSqliteAdapter(targetOf(db));
    try {
      const cp = adapter.checkpoints;
      if (!cp) throw new Error('the SQLite adapter keeps checkpoints');
      expect(cp.read('fix-a')).toBeUndefined();
      expect(tables(db)).toEqual(['items']);
      cp.write('fix-a', '[1]');
      cp.write('fix-b', '[7]');
      cp.write('fix-a', '[2]');
      expect([cp.read('fix-a'), cp.read('fix-b'), cp.read('fix-c')]).toEqual(['[2]', '[7]', undefined]);
      expect(query(db, 'SELECT id, cursor FROM _datafix_checkpoints ORDER BY id')).toEqual([
        { id: 'fix-a', cursor: '[2]' },
        { id: 'fix-b', cursor: '[7]' },
      ]);
      cp.clear('fix-a');
      expect(tables(db)).toEqual(['_datafix_checkpoints', 'items']);
      expect(cp.read('fix-a')).toBeUndefined();
      cp.clear('fix-b');
      expect(tables(db)).toEqual(['items']);
      cp.clear('fix-b');
      expect(tables(db)).toEqual(['items']);
    } finally {
      await adapter.close();
    }
  });

  it('a batch of writes stores its checkpoint in the same transaction, replacing the one before', async () => {
    const db = newDb('CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, NULL)');
    const fill = (id: number): WriteRequest => ({
      table: 'items',
      key: { id },
      fields: [{ name: 'note', value: 'x', guard: 'absent', before: null }],
    });
    expect(await write(db, [fill(1)], { id: 'fix', cursor: '[1]' })).toEqual([{ status: 'applied' }]);
    expect(await write(db, [fill(2)], { id: 'fix', cursor: '[2]' })).toEqual([{ status: 'applied' }]);
    expect(query(db, 'SELECT id, cursor FROM _datafix_checkpoints')).toEqual([{ id: 'fix', cursor: '[2]' }]);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'x' },
      { id: 2, note: 'x' },
    ]);
    const adapter = createSqliteAdapter(targetOf(db));
    try {
      adapter.checkpoints?.clear('fix');
      expect(tables(db)).toEqual(['items']);
    } finally {
      await adapter.close();
    }
  });

  it('a batch whose writes meet a conflict and a failure still stores its checkpoint: the page is done', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT CHECK (note <> 'bad')); INSERT INTO items VALUES (1, 'theirs'), (2, NULL), (3, NULL)",
    );
    const fill = (id: number, value: string): WriteRequest => ({
      table: 'items',
      key: { id },
      fields: [{ name: 'note', value, guard: 'absent', before: null }],
    });
    const results = await write(db, [fill(1, 'x'), fill(2, 'bad'), fill(3, 'x')], { id: 'fix', cursor: '[3]' });
    expect(results.map((r) => r.status)).toEqual(['conflict', 'failed', 'applied']);
    expect(query(db, 'SELECT id, cursor FROM _datafix_checkpoints')).toEqual([{ id: 'fix', cursor: '[3]' }]);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'theirs' },
      { id: 2, note: null },
      { id: 3, note: 'x' },
    ]);
  });
});

describe('opening the database file', () => {
  it('a directory given as the database is DF410 saying it is not a file', () => {
    const dir = tmp();
    mkdirSync(dir.file('adir'));
    expect(() => createSqliteAdapter(targetOf(dir.file('adir')))).toThrow(
      expect.objectContaining({
        code: 'DF410',
        message: `${dir.file('adir')} is not a file, so it cannot be a SQLite database; give the path of the database file itself`,
      }),
    );
  });

  it('a file that is not a SQLite database is DF410 saying so, live and read-only alike', () => {
    const dir = tmp();
    const path = dir.write('notes.db', 'just some text, not SQLite\n'.repeat(200));
    for (const readonly of [false, true]) {
      expect(() => createSqliteAdapter(targetOf(path), { readonly })).toThrow(
        expect.objectContaining({
          code: 'DF410',
          message: `cannot open SQLite database ${path}: it is not a SQLite database. Check the path in the spec's target`,
        }),
      );
    }
  });
});
