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
import { createDb, query, refusal } from './fixtures.js';

const tmp = useTempDirs();

const targetOf = (path: string) => ({ backend: 'sqlite' as const, path, busyTimeoutMs: 5000 });

function newDb(sql: string): string {
  const path = tmp().file('w.db');
  createDb(path, sql);
  return path;
}

async function write(db: string, requests: WriteRequest[]) {
  const adapter = createSqliteAdapter(targetOf(db));
  try {
    return await adapter.write(requests, { concurrency: 1 });
  } finally {
    await adapter.close();
  }
}

describe('a key that matches several rows when written (the schema changed since the check)', () => {
  // `code` was unique when the fix was checked; its index is gone, and two rows now share 'dup'.
  const SCHEMA = `CREATE TABLE items (id INTEGER PRIMARY KEY, code TEXT, note TEXT);
    INSERT INTO items VALUES (1, 'one', NULL), (2, 'dup', NULL), (3, 'dup', NULL);`;

  it('an update stops the run with DF403 and nothing of the batch is written, the records before it included', async () => {
    const db = newDb(SCHEMA);
    const err = await refusal(
      write(db, [
        { table: 'items', key: { code: 'one' }, fields: [{ name: 'note', value: 'a', guard: 'absent', before: null }] },
        { table: 'items', key: { code: 'dup' }, fields: [{ name: 'note', value: 'b', guard: 'absent', before: null }] },
      ]),
    );
    expect(err.code).toBe('DF403');
    expect(err.message).toBe(
      'the update of `items` by (code) changed 2 rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key',
    );
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: null },
      { id: 3, note: null },
    ]);
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
        { action: 'delete', table: 'items', key: { code: 'dup' }, fields: [] },
      ]),
    );
    expect(err.code).toBe('DF403');
    expect(err.message).toBe(
      'the delete from `items` by (code) matched 2 rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key',
    );
    expect(query(db, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
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
