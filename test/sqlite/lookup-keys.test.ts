/**
 * A lookup's key is compared with a column by `=`, so it must be one SQLite value: a record whose
 * key renders to a list or a map (a whole earlier lookup) fails with key_invalid, naming the
 * column and why, and nothing of it is written. Lookups of one row (`get`) and of several
 * (`where`) alike.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

/** Runs a fix over two `src` rows whose lookup `o` is keyed by `key`: `{{ rel }}` (an earlier lookup of a list) or `{{ one }}` (of a row). */
async function runWith(o: string, key: string) {
  const db = tmp().file('keys.db');
  createDb(
    db,
    `CREATE TABLE src (id INTEGER PRIMARY KEY, note TEXT);
     CREATE TABLE others (id INTEGER PRIMARY KEY, v TEXT);
     INSERT INTO src (id) VALUES (1), (2);
     INSERT INTO others VALUES (1, 'one'), (2, 'two');`,
  );
  const lookup =
    o === 'get' ? `{ table: others, get: { id: "${key}" } }` : `{ table: others, where: { equals: { id: "${key}" } }, max: 3 }`;
  const run = await runYaml(`name: keys
${sqliteTarget(db)}source: { as: s, table: src }
lookups:
  ${key.includes('rel') ? 'rel: { table: others, where: { equals: { id: "{{ s.id }}" } }, max: 3 }' : 'one: { table: others, get: { id: "{{ s.id }}" } }'}
  o: ${lookup}
update:
  key: { id: "{{ s.id }}" }
  set: { note: "{{ o }}" }
`);
  expect(query(db, 'SELECT note FROM src ORDER BY id')).toEqual([{ note: null }, { note: null }]);
  return {
    records: run.records.map((r) => [r.key.id, r.outcome, r.reason, r.message]),
    statements: [run.requests.lookup, run.requests.lookupMany],
  };
}

describe('a lookup key that is not one SQLite value', () => {
  // The statements run: only the earlier lookup's (`one`: one per record; `rel`: one for the
  // page), none for a key SQLite cannot compare.
  it.each([
    ['get', '{{ rel }}', 'key column `id`: a list is not a single SQLite value', [undefined, 1]],
    ['get', '{{ one }}', 'key column `id`: a map is not a single SQLite value', [2, undefined]],
    ['where', '{{ rel }}', 'column `id`: a list is not a single SQLite value', [undefined, 1]],
    ['where', '{{ one }}', 'column `id`: a map is not a single SQLite value', [2, undefined]],
  ])('%s keyed by %s fails each record with key_invalid: %s', async (o, key, message, statements) => {
    expect(await runWith(o, key)).toEqual({
      records: [
        [1, 'failed', 'key_invalid', message],
        [2, 'failed', 'key_invalid', message],
      ],
      statements,
    });
  });
});

describe('a lookup key that is a BLOB', () => {
  it.each([
    ['get', '{ table: blobs, get: { id: "{{ s.ref }}" } }', '{{ o.v }}'],
    ['where', '{ table: blobs, where: { equals: { id: "{{ s.ref }}" } }, max: 2 }', '{{ o[0].v }}'],
  ])('%s: finds the row whose key has the same bytes', async (_o, lookup, value) => {
    const db = tmp().file('blobs.db');
    createDb(
      db,
      `CREATE TABLE src (id INTEGER PRIMARY KEY, ref BLOB, note TEXT);
       CREATE TABLE blobs (id BLOB PRIMARY KEY, v TEXT);
       INSERT INTO src (id, ref) VALUES (1, x'00ff'), (2, x'0102');
       INSERT INTO blobs VALUES (x'00ff', 'first'), (x'0102', 'second'), (x'01', 'prefix');`,
    );
    const run = await runYaml(`name: blob-keys
${sqliteTarget(db)}source: { as: s, table: src }
lookups:
  o: ${lookup}
update:
  key: { id: "{{ s.id }}" }
  set: { note: "${value}" }
`);
    expect(run.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(query(db, 'SELECT id, note FROM src ORDER BY id')).toEqual([
      { id: 1, note: 'first' },
      { id: 2, note: 'second' },
    ]);
  });
});

describe('a lookup key that is a boolean', () => {
  it('is bound as SQLite stores it (true as 1, false as 0)', async () => {
    const db = tmp().file('bools.db');
    createDb(
      db,
      `CREATE TABLE src (id INTEGER PRIMARY KEY, yes TEXT, no TEXT);
       CREATE TABLE modes (flag INTEGER PRIMARY KEY, label TEXT);
       INSERT INTO src (id) VALUES (1);
       INSERT INTO modes VALUES (1, 'on'), (0, 'off');`,
    );
    await runYaml(`name: bool-keys
${sqliteTarget(db)}source: { as: s, table: src }
lookups:
  on: { table: modes, get: { flag: true } }
  off: { table: modes, get: { flag: false } }
update:
  key: { id: "{{ s.id }}" }
  set: { yes: "{{ on.label }}", no: "{{ off.label }}" }
`);
    expect(query(db, 'SELECT yes, no FROM src')).toEqual([{ yes: 'on', no: 'off' }]);
  });
});
