/**
 * The last refusals of the SQLite adapter's check(), before anything is read: a generated column
 * written (DF405), a `create` that leaves NOT NULL columns without a value (DF265), a write that
 * would fire a foreign key's ON UPDATE action (DF420), and a write SQLite cannot even prepare
 * without the application's own functions (DF417), each with its exact message and the spec
 * location it points at. And their counterparts that must not be refused: an update of a table
 * other tables reference ON DELETE CASCADE, a `create` that leaves the rowid to SQLite, and a
 * `create` into a table whose UPDATE trigger needs the application. Rows are read back through
 * an independent connection.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, refusal, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('check.db');
  createDb(path, sql);
  return path;
}

const spec = (db: string, body: string) => `name: t\n${sqliteTarget(db)}${body}`;

/** The path of the one diagnostic a refusal carries (where in the spec it points). */
const pathOf = (err: { diagnostics: readonly { path?: string }[] }) => err.diagnostics.map((d) => d.path);

describe('generated columns cannot be written (DF405)', () => {
  const schema =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, email TEXT, note TEXT, e_low TEXT GENERATED ALWAYS AS (lower(email)) VIRTUAL); INSERT INTO items (id, email, note) VALUES (1, 'A@X', 'n1'), (2, 'B@X', 'n2')";

  it('in update.set: the message names the column, its table and what to write instead; it points at update.set.<column>', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(spec(db, 'source: { as: r, table: items }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { e_low: x }\n')),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config' });
    expect(err.message).toBe(
      'update.set.e_low: `e_low` of `items` is a generated column; SQLite computes it from other columns, so it cannot be written. Write the columns it is computed from',
    );
    expect(pathOf(err)).toEqual(['/update/set/e_low']);
    expect(query(db, 'SELECT id, email, note FROM items ORDER BY id')).toEqual([
      { id: 1, email: 'A@X', note: 'n1' },
      { id: 2, email: 'B@X', note: 'n2' },
    ]);
  });

  it('in update.remove: it points at the entry of the list (its index), not at a key of a map', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(spec(db, 'source: { as: r, table: items }\nupdate:\n  key: { id: "{{ r.id }}" }\n  remove: [note, e_low]\n')),
    );
    expect(err).toMatchObject({ code: 'DF405', category: 'config' });
    expect(err.message).toBe(
      'update.remove.e_low: `e_low` of `items` is a generated column; SQLite computes it from other columns, so it cannot be written. Write the columns it is computed from',
    );
    expect(pathOf(err)).toEqual(['/update/remove/1']);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: 'n1' },
      { id: 2, note: 'n2' },
    ]);
  });
});

describe('ON DELETE actions concern deletes only', () => {
  it('an update of a table another table references ON DELETE CASCADE is not refused: the rows are updated, the referencing rows untouched', async () => {
    const db = newDb(
      "CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT, note TEXT); INSERT INTO parents VALUES (1, 'p1', NULL), (2, 'p2', NULL); " +
        'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE); INSERT INTO kids VALUES (10, 1), (20, 2)',
    );
    const run = await runYaml(
      spec(db, 'source: { as: p, table: parents }\nupdate:\n  key: { id: "{{ p.id }}" }\n  set: { note: "seen {{ p.name }}" }\n'),
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0, failed: 0 });
    expect(query(db, 'SELECT id, name, note FROM parents ORDER BY id')).toEqual([
      { id: 1, name: 'p1', note: 'seen p1' },
      { id: 2, name: 'p2', note: 'seen p2' },
    ]);
    expect(query(db, 'SELECT id, parent_id FROM kids ORDER BY id')).toEqual([
      { id: 10, parent_id: 1 },
      { id: 20, parent_id: 2 },
    ]);
  });
});

describe('create and NOT NULL columns without a default (DF265)', () => {
  const kids =
    "CREATE TABLE kids (id INTEGER PRIMARY KEY, code TEXT, name TEXT); INSERT INTO kids VALUES (1, 'c1', 'k1'), (2, 'c2', 'k2');";
  const createParents = (db: string) =>
    spec(
      db,
      'source: { as: kid, table: kids }\ncreate:\n  table: parents\n  key: { code: "{{ kid.code }}" }\n  set: { name: "for {{ kid.name }}" }\n',
    );

  it('one such column: the message names it in the singular, at create.set', async () => {
    const db = newDb(`${kids} CREATE TABLE parents (id INTEGER PRIMARY KEY, code TEXT UNIQUE, name TEXT, owner TEXT NOT NULL)`);
    const err = await refusal(runYaml(createParents(db)));
    expect(err).toMatchObject({ code: 'DF265', category: 'config' });
    expect(err.message).toBe(
      'create: `parents` has NOT NULL column `owner` without a default, which create.set does not write; every row would fail. Add it to create.set',
    );
    expect(pathOf(err)).toEqual(['/create/set']);
    expect(query(db, 'SELECT count(*) AS n FROM parents')).toEqual([{ n: 0 }]);
  });

  it('two such columns: the message names both, in the plural; a NOT NULL column with a default is not among them', async () => {
    const db = newDb(
      `${kids} CREATE TABLE parents (id INTEGER PRIMARY KEY, code TEXT UNIQUE, owner TEXT NOT NULL, name TEXT, kind TEXT NOT NULL DEFAULT 'x', region TEXT NOT NULL)`,
    );
    const err = await refusal(runYaml(createParents(db)));
    expect(err).toMatchObject({ code: 'DF265', category: 'config' });
    expect(err.message).toBe(
      'create: `parents` has NOT NULL columns `owner`, `region` without a default, which create.set does not write; every row would fail. Add them to create.set',
    );
    expect(pathOf(err)).toEqual(['/create/set']);
    expect(query(db, 'SELECT count(*) AS n FROM parents')).toEqual([{ n: 0 }]);
  });

  it('an INTEGER PRIMARY KEY NOT NULL that create does not write is no such column: SQLite gives each new row its rowid', async () => {
    const db = newDb(`${kids} CREATE TABLE parents (id INTEGER PRIMARY KEY NOT NULL, code TEXT UNIQUE, name TEXT)`);
    const run = await runYaml(createParents(db));
    expect(run.summary).toMatchObject({ total: 2, updated: 2, skipped: 0, failed: 0 });
    expect(query(db, 'SELECT id, code, name FROM parents ORDER BY id')).toEqual([
      { id: 1, code: 'c1', name: 'for k1' },
      { id: 2, code: 'c2', name: 'for k2' },
    ]);
  });
});

describe('writing a column a foreign key updates ON UPDATE (DF420)', () => {
  const schema =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, code TEXT UNIQUE, fixed_code TEXT, note TEXT); INSERT INTO users VALUES (1, 'OLD', 'NEW', NULL); " +
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_code TEXT REFERENCES users (code) ON UPDATE CASCADE); INSERT INTO orders VALUES (10, 'OLD')";

  it('in update.set next to another field: the message names the foreign key and its action, at update.set.<column>', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: u, table: users }\nupdate:\n  key: { id: "{{ u.id }}" }\n  set: { note: checked, code: "{{ u.fixed_code }}" }\n  overwrite: true\n',
        ),
      ),
    );
    expect(err).toMatchObject({ code: 'DF420', category: 'config' });
    expect(err.message).toBe(
      'update.set.code: `orders`.`user_code` references `users`.`code` ON UPDATE CASCADE, so writing it would also change rows of `orders`, which datafix neither shows, journals nor undoes. Change those rows with their own fix, or write another column',
    );
    expect(pathOf(err)).toEqual(['/update/set/code']);
    expect(query(db, 'SELECT id, code, note FROM users')).toEqual([{ id: 1, code: 'OLD', note: null }]);
    expect(query(db, 'SELECT id, user_code FROM orders')).toEqual([{ id: 10, user_code: 'OLD' }]);
  });

  it('in update.touch: refused too, pointing at update.touch.<column>', async () => {
    const db = newDb(schema);
    const err = await refusal(
      runYaml(
        spec(
          db,
          'source: { as: u, table: users }\nupdate:\n  key: { id: "{{ u.id }}" }\n  set: { note: checked }\n  touch: { code: "{{ u.fixed_code }}" }\n',
        ),
      ),
    );
    expect(err).toMatchObject({ code: 'DF420', category: 'config' });
    expect(pathOf(err)).toEqual(['/update/touch/code']);
    expect(query(db, 'SELECT id, code, note FROM users')).toEqual([{ id: 1, code: 'OLD', note: null }]);
    expect(query(db, 'SELECT id, user_code FROM orders')).toEqual([{ id: 10, user_code: 'OLD' }]);
  });
});

describe('a write SQLite cannot prepare without the application (DF417)', () => {
  // better-sqlite3 lets a trigger name a function this connection does not define; SQLite looks
  // it up only when it prepares a statement that fires the trigger.
  const schema =
    "CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO src VALUES (1, 'a'), (2, 'b'); CREATE TABLE dst (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO dst VALUES (2, 'kept');";
  const createDst = (db: string) =>
    spec(db, 'source: { as: s, table: src }\ncreate:\n  table: dst\n  key: { id: "{{ s.id }}" }\n  set: { v: "made from {{ s.name }}" }\n');

  it('a create into a table whose INSERT trigger calls an application function is refused, at create.set', async () => {
    const db = newDb(`${schema} CREATE TRIGGER dst_ins AFTER INSERT ON dst BEGIN SELECT app_fn(NEW.v); END;`);
    const err = await refusal(runYaml(createDst(db)));
    expect(err).toMatchObject({ code: 'DF417', category: 'config' });
    expect(err.message).toBe(
      'create: SQLite cannot prepare the create of `dst` (no such function: app_fn): an index, trigger or CHECK of the table needs something only the application defines, so datafix cannot write this table',
    );
    expect(pathOf(err)).toEqual(['/create/set']);
    expect(query(db, 'SELECT id, v FROM dst ORDER BY id')).toEqual([{ id: 2, v: 'kept' }]);
  });

  it('a create into a table whose UPDATE trigger calls one is not refused: an INSERT never fires it', async () => {
    const db = newDb(`${schema} CREATE TRIGGER dst_upd AFTER UPDATE ON dst BEGIN SELECT app_fn(NEW.v); END;`);
    const run = await runYaml(createDst(db));
    expect(run.summary).toMatchObject({ total: 2, updated: 1, skipped: 1, failed: 0, reasons: { exists: 1 } });
    expect(query(db, 'SELECT id, v FROM dst ORDER BY id')).toEqual([
      { id: 1, v: 'made from a' },
      { id: 2, v: 'kept' },
    ]);
  });

  it('a delete from a table whose DELETE trigger calls one is refused, pointing at delete (a delete has no set)', async () => {
    const db = newDb(`${schema} CREATE TRIGGER dst_del BEFORE DELETE ON dst BEGIN SELECT app_fn(OLD.v); END;`);
    const err = await refusal(runYaml(spec(db, 'source: { as: d, table: dst }\ndelete:\n  key: { id: "{{ d.id }}" }\n')));
    expect(err).toMatchObject({ code: 'DF417', category: 'config' });
    expect(err.message).toBe(
      'delete: SQLite cannot prepare the delete of `dst` (no such function: app_fn): an index, trigger or CHECK of the table needs something only the application defines, so datafix cannot write this table',
    );
    expect(pathOf(err)).toEqual(['/delete']);
    expect(query(db, 'SELECT id, v FROM dst ORDER BY id')).toEqual([{ id: 2, v: 'kept' }]);
  });
});
