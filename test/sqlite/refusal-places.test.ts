/**
 * A refusal of a written column names the part of the update that writes it, in its message and
 * its location: `update.set`, `update.touch` or `update.remove` (by its index), so the person
 * reading it finds the line to change. Nothing is written.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();
const pathOf = (err: { diagnostics: readonly { path?: string }[] }) => err.diagnostics.map((d) => d.path);

describe('DF420: a column another table references ON UPDATE CASCADE', () => {
  const SCHEMA =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, code TEXT UNIQUE, fixed_code TEXT, note TEXT); INSERT INTO users VALUES (1, 'OLD', 'NEW', NULL); " +
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_code TEXT REFERENCES users (code) ON UPDATE CASCADE); INSERT INTO orders VALUES (10, 'OLD')";
  const because =
    ': `orders`.`user_code` references `users`.`code` ON UPDATE CASCADE, so writing it would also change rows of `orders`, which datafix neither shows, journals nor undoes. Change those rows with their own fix, or write another column';

  it.each([
    ['touch', 'set: { note: checked }\n  touch: { code: "{{ u.fixed_code }}" }', 'update.touch.code', '/update/touch/code'],
    ['remove', 'set: { note: checked }\n  remove: [fixed_code, code]', 'update.remove.1', '/update/remove/1'],
    [
      'remove, beside a touch',
      'set: { note: checked }\n  touch: { fixed_code: done }\n  remove: [code]',
      'update.remove.0',
      '/update/remove/0',
    ],
    ['set', 'set: { code: "{{ u.fixed_code }}" }', 'update.set.code', '/update/set/code'],
  ])('written by update.%s: the message and location name it there', async (_part, writes, where, path) => {
    const db = tmp().file('fk.db');
    createDb(db, SCHEMA);
    const err = await refusal(
      runYaml(`name: t\n${sqliteTarget(db)}source: { as: u, table: users }\nupdate:\n  key: { id: "{{ u.id }}" }\n  ${writes}\n`),
    );
    expect([err.code, err.message, pathOf(err)]).toEqual(['DF420', `${where}${because}`, [path]]);
    expect(query(db, 'SELECT code, note FROM users')).toEqual([{ code: 'OLD', note: null }]);
    expect(query(db, 'SELECT user_code FROM orders')).toEqual([{ user_code: 'OLD' }]);
  });
});

describe('DF419: the primary key the source is read in order of', () => {
  it('written by update.touch: the message and location name update.touch', async () => {
    const db = tmp().file('pk.db');
    createDb(db, "CREATE TABLE items (k TEXT PRIMARY KEY, code TEXT UNIQUE, note TEXT); INSERT INTO items VALUES ('a', 'c', NULL)");
    const err = await refusal(
      runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: r, table: items }\nupdate:\n  key: { code: "{{ r.code }}" }\n  set: { note: x }\n  touch: { k: b }\n`,
      ),
    );
    expect([err.code, pathOf(err)]).toEqual(['DF419', ['/update/touch/k']]);
    expect(err.message).toMatch(/^update\.touch\.k: `k` is the primary key datafix reads `items` in order of; /);
    expect(query(db, 'SELECT k, note FROM items')).toEqual([{ k: 'a', note: null }]);
  });
});
