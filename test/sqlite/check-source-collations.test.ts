/**
 * check() refuses, before any row is read, a comparison SQLite cannot make without the
 * application: a `where` lookup matching a column whose collation the application defines is
 * DF413 at that lookup's `where`, and nothing is written. A column with such a collation that the
 * source's `where` only tests for NULL needs no collation: the fix runs and writes what it should.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createAppDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** A database made as an application makes it, with its own collation and function (`createAppDb`). */
function appDb(sql: string): string {
  const db = tmp().file('app.db');
  createAppDb(db, sql);
  return db;
}

const ITEMS = 'CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, NULL);';

const cannotCompare = (at: string, column: string, table: string) =>
  `${at}: SQLite cannot compare column \`${column}\` of \`${table}\` here (no such collation sequence: app_order): its collation is the application's own, and datafix knows only SQLite's (BINARY, NOCASE, RTRIM)`;

describe('a lookup comparing a column of an application collation', () => {
  it('a where lookup matching it is DF413 at lookups.<name>.where', async () => {
    const db = appDb(
      `${ITEMS} CREATE TABLE media (id INTEGER PRIMARY KEY, owner TEXT COLLATE app_order, url TEXT); INSERT INTO media VALUES (10, '1', 'u1');`,
    );
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
          'lookups:\n  m: { table: media, where: { equals: { owner: "{{ row.id }}" } }, max: 5 }\n' +
          'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ m[0].url }}" }\n',
      ),
    );
    expect({ code: err.code, category: err.category, message: err.message, paths: err.diagnostics.map((d) => d.path) }).toEqual({
      code: 'DF413',
      category: 'config',
      message: cannotCompare('lookups.m.where', 'owner', 'media'),
      paths: ['/lookups/m/where'],
    });
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: null },
    ]);
  });
});

describe('a column of an application collation that is only tested for NULL', () => {
  it("in the source's where is no comparison: the rows it selects are updated", async () => {
    const db = appDb(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT COLLATE app_order, note TEXT); INSERT INTO items VALUES (1, 'x', NULL), (2, NULL, NULL), (3, 'y', NULL);",
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, where: { notNull: name } }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: named }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'named' },
      { id: 2, note: null },
      { id: 3, note: 'named' },
    ]);
  });
});
