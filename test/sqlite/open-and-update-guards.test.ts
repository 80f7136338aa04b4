/**
 * The adapter assembles an update's SQL once per shape (table, key columns, fields and guards) and
 * reuses it for the records of that shape: records of one batch that write the same column under
 * different guards, of different tables, or by different key columns, each keep their own
 * statement. A fill-only write never overwrites a filled value, an unconditional write (guard
 * `none`) does, an `unchanged` write holds only while the column still has its before-image (NULL
 * when that is absent), and each record writes its own table and its own row, by its own key.
 * Asserted by the results and by the rows read back through an independent connection.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { WriteRequest } from '../../src/adapters/types.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query } from './fixtures.js';

const tmp = useTempDirs();

const targetOf = (path: string) => ({ backend: 'sqlite' as const, path, busyTimeoutMs: 5000 });

function newDb(sql: string): string {
  const path = tmp().file('g.db');
  createDb(path, sql);
  return path;
}

/** One batch of `requests` written through a new adapter (nothing assembled before it). */
async function write(db: string, requests: WriteRequest[]) {
  const adapter = createSqliteAdapter(targetOf(db));
  try {
    return await adapter.write(requests, { concurrency: 1 });
  } finally {
    await adapter.close();
  }
}

/** A write of `note` on the row with `id`. */
const note = (id: number, value: string, guard: WriteRequest['fields'][number]['guard'], before: unknown): WriteRequest => ({
  table: 'items',
  key: { id },
  fields: [{ name: 'note', value, guard, before }],
});

const notes = (db: string) => query(db, 'SELECT id, note FROM items ORDER BY id');

describe('records of one batch writing the same column under different guards', () => {
  it('an unconditional write, then a fill-only one: the first overwrites, the second still refuses a filled row', async () => {
    const db = newDb("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'old'), (2, 'theirs');");
    expect(await write(db, [note(1, 'new', 'none', null), note(2, 'new', 'absent', null)])).toEqual([
      { status: 'applied' },
      { status: 'conflict' },
    ]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'new' },
      { id: 2, note: 'theirs' },
    ]);
  });

  it('a fill-only write, then an unconditional one: the first refuses a filled row, the second overwrites', async () => {
    const db = newDb("CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'theirs'), (2, 'old');");
    expect(await write(db, [note(1, 'new', 'absent', null), note(2, 'new', 'none', null)])).toEqual([
      { status: 'conflict' },
      { status: 'applied' },
    ]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'theirs' },
      { id: 2, note: 'new' },
    ]);
  });

  it('a fill-only write, then writes guarded on the value read: each holds by its own guard', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, 'read'), (3, 'changed since');",
    );
    expect(
      await write(db, [note(1, 'new', 'absent', null), note(2, 'new', 'unchanged', 'read'), note(3, 'new', 'unchanged', 'read')]),
    ).toEqual([{ status: 'applied' }, { status: 'applied' }, { status: 'conflict' }]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'new' },
      { id: 2, note: 'new' },
      { id: 3, note: 'changed since' },
    ]);
  });

  it('a write guarded on the value read, then an unconditional one, then the guarded one again', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, 'read'), (2, 'changed since'), (3, 'changed since');",
    );
    expect(
      await write(db, [note(1, 'new', 'unchanged', 'read'), note(2, 'new', 'none', 'read'), note(3, 'new', 'unchanged', 'read')]),
    ).toEqual([{ status: 'applied' }, { status: 'applied' }, { status: 'conflict' }]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'new' },
      { id: 2, note: 'new' },
      { id: 3, note: 'changed since' },
    ]);
  });

  // As undo restores a value the run wrote where there was none: `unchanged` with no before-image
  // holds only while the column is NULL.
  it('a write guarded on the column being absent (no before-image), then one guarded on a value, then absent again', async () => {
    const db = newDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, 'read'), (3, 'filled since');",
    );
    expect(
      await write(db, [
        note(1, 'new', 'unchanged', undefined),
        note(2, 'new', 'unchanged', 'read'),
        note(3, 'new', 'unchanged', undefined),
      ]),
    ).toEqual([{ status: 'applied' }, { status: 'applied' }, { status: 'conflict' }]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'new' },
      { id: 2, note: 'new' },
      { id: 3, note: 'filled since' },
    ]);
  });
});

describe('records of one batch with the same fields and guards', () => {
  it('of two tables: each record writes its own table', async () => {
    const db = newDb(
      'CREATE TABLE a (id INTEGER PRIMARY KEY, note TEXT); CREATE TABLE b (id INTEGER PRIMARY KEY, note TEXT); ' +
        'INSERT INTO a VALUES (1, NULL); INSERT INTO b VALUES (1, NULL);',
    );
    const fill = (table: string, value: string): WriteRequest => ({
      table,
      key: { id: 1 },
      fields: [{ name: 'note', value, guard: 'absent', before: null }],
    });
    expect(await write(db, [fill('a', 'to a'), fill('b', 'to b')])).toEqual([{ status: 'applied' }, { status: 'applied' }]);
    expect([query(db, 'SELECT id, note FROM a'), query(db, 'SELECT id, note FROM b')]).toEqual([
      [{ id: 1, note: 'to a' }],
      [{ id: 1, note: 'to b' }],
    ]);
  });

  it('keyed by two unique keys whose column names run together (ab, c and a, bc): each record writes the row its key names', async () => {
    const db = newDb(
      'CREATE TABLE items (id INTEGER PRIMARY KEY, a TEXT, ab TEXT, bc TEXT, c TEXT, note TEXT, UNIQUE (ab, c), UNIQUE (a, bc)); ' +
        "INSERT INTO items VALUES (1, 'p', 'x', 'q', 'y', NULL), (2, 'A2', 'm', 'B2', 'n', NULL), (3, 'z', 'A2', 'w', 'B2', NULL);",
    );
    const fill = (key: Record<string, string>, value: string): WriteRequest => ({
      table: 'items',
      key,
      fields: [{ name: 'note', value, guard: 'absent', before: null }],
    });
    expect(await write(db, [fill({ ab: 'x', c: 'y' }, 'one'), fill({ a: 'A2', bc: 'B2' }, 'two')])).toEqual([
      { status: 'applied' },
      { status: 'applied' },
    ]);
    expect(notes(db)).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
      { id: 3, note: null },
    ]);
  });
});
