/**
 * delete and create through the CLI on a real SQLite file, with every safety guarantee of an
 * update: the journal keeps the whole before-image before the write (format 4), undo re-creates
 * a deleted row only where its key is free and deletes a created row only while unchanged, a
 * saved plan refuses to delete or create over a concurrent change, and a run killed part-way
 * resumes and is still undone exactly. Expected data is computed here from the seeded rows.
 */
import { copyFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb } from '../sqlite/fixtures.js';
import {
  dumpSqlite,
  journalWrites,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  onlyState,
  show,
  sqliteAll,
  sqliteExec,
  startCli,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

const KIDS = 3000;
const PARENTS = 40;
/** Kid i's parent: every third kid points at a parent that does not exist (ids from 1000 on). */
const parentOf = (i: number) => (i % 3 === 0 ? 1000 + (i % 97) : 1 + (i % PARENTS));
const orphanIds = Array.from({ length: KIDS }, (_, i) => i + 1).filter((id) => parentOf(id) >= 1000);
const missingParents = [...new Set(orphanIds.map(parentOf))].sort((a, b) => a - b);

function seed(path: string): void {
  const parents = Array.from({ length: PARENTS }, (_, i) => `(${i + 1}, 'parent ${i + 1}')`);
  const kids = Array.from({ length: KIDS }, (_, i) => {
    const id = i + 1;
    return `(${id}, ${parentOf(id)}, 'kid ${id}', ${id % 5 === 0 ? 'NULL' : `${id}.5`}, ${id % 7 === 0 ? "x'00ff10'" : 'NULL'})`;
  });
  createDb(
    path,
    'CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL); ' +
      'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, name TEXT, score REAL, data BLOB); ' +
      `INSERT INTO parents VALUES ${parents.join(',')}; INSERT INTO kids VALUES ${kids.join(',')}`,
  );
}

const DELETE_ORPHANS = `name: delete-orphan-kids
target: { sqlite: { path: "\${DB}" } }
source: { table: kids, as: kid, pageSize: 100 }
lookups:
  parent: { table: parents, get: { id: "{{ kid.parent_id }}" } }
skip:
  - { reason: parent_exists, when: { exists: parent.id } }
delete:
  key: { id: "{{ kid.id }}" }
`;

const CREATE_PARENTS = `name: create-missing-parents
target: { sqlite: { path: "\${DB}" } }
source: { table: kids, as: kid, pageSize: 100 }
create:
  table: parents
  key: { id: "{{ kid.parent_id }}" }
  set: { name: "restored for kid {{ kid.id }}" }
`;

/** The first kid (in id order) of each missing parent: the one whose name the created row carries. */
const firstKidOf = new Map<number, number>();
for (const id of orphanIds) if (!firstKidOf.has(parentOf(id))) firstKidOf.set(parentOf(id), id);

let template: string;
beforeAll(() => {
  template = shared().file('template.db');
  seed(template);
});

function copy(spec: string): { dir: ReturnType<typeof tmp>; db: string; spec: string; env: Record<string, string> } {
  const dir = tmp();
  const db = dir.file('family.db');
  copyFileSync(template, db);
  return { dir, db, spec: dir.write('fix.yaml', spec), env: { DB: db } };
}

const ids = (db: string, table: string) => sqliteAll<{ id: number }>(db, `SELECT id FROM ${table} ORDER BY id`).map((r) => Number(r.id));
const journalOf = (stderr: string) => /journal (\S+\.journal\.jsonl) \(undo with/.exec(stderr)?.[1] as string;

describe('delete on SQLite through the CLI', () => {
  it('run deletes the orphans (whole before-images journaled), undo re-creates them byte for byte', async () => {
    const { dir, db, spec, env } = copy(DELETE_ORPHANS);
    const before = dumpSqlite(db);
    const r = await runCli(['run', spec, '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: KIDS, updated: orphanIds.length, skipped: KIDS - orphanIds.length, failed: 0 });
    const orphans = new Set(orphanIds);
    expect(ids(db, 'kids')).toEqual(Array.from({ length: KIDS }, (_, i) => i + 1).filter((id) => !orphans.has(id)));
    const journal = journalOf(r.stderr);
    const lines = jsonLines(journal);
    expect(lines[0]).toMatchObject({ type: 'header', format: 5 });
    const first = journalWrites(journal)[0];
    expect(first).toMatchObject({
      action: 'delete',
      table: 'kids',
      key: { id: orphanIds[0] },
      fields: [
        { name: 'id', before: orphanIds[0], after: { $absent: true } },
        { name: 'parent_id', before: parentOf(orphanIds[0] as number), after: { $absent: true } },
        { name: 'name', before: `kid ${orphanIds[0]}`, after: { $absent: true } },
        { name: 'score', before: Number(`${orphanIds[0]}.5`), after: { $absent: true } },
        { name: 'data', before: null, after: { $absent: true } },
      ],
    });

    // One orphan is created again by someone else, with other values: undo leaves it alone.
    const taken = orphanIds[5] as number;
    sqliteExec(db, "INSERT INTO kids VALUES (?, 1, 'someone else', NULL, NULL)", taken);
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path, timeoutMs: 60_000 });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ restored: orphanIds.length - 1, conflicts: 1, failed: 0 });
    expect(undo.stderr).toContain(`kids id=${taken}`);
    expect(undo.stderr).toContain('a record with this key exists again and differs from the one deleted');
    expect(sqliteAll(db, 'SELECT name FROM kids WHERE id = ?', taken)).toEqual([{ name: 'someone else' }]);
    // Every other row is exactly as seeded: same values, same types and bytes (REAL, BLOB, NULL).
    const others = (rows: Record<string, unknown>[] | undefined) => rows?.filter((row) => Number(row.id) !== taken);
    const after = dumpSqlite(db);
    expect(others(after.rows.kids)).toEqual(others(before.rows.kids));
    expect(after.rows.parents).toEqual(before.rows.parents);
  });

  it('a saved plan made before a concurrent change refuses to delete that row (drifted); undo of the apply re-creates the rest', async () => {
    const { dir, db, spec, env } = copy(DELETE_ORPHANS);
    const before = dumpSqlite(db);
    const plan = dir.file('delete.plan.jsonl');
    const planned = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(planned.code, show(planned)).toBe(0);
    expect(jsonLines(plan)[0]).toMatchObject({ type: 'plan', format: 2 });
    expect(jsonLines(plan)[1]).toMatchObject({ type: 'change', action: 'delete', table: 'kids', key: { id: orphanIds[0] } });
    // The review comment shows each record going, field by field, and nothing coming.
    const review = await runCli(['plan', spec, '--out', dir.file('review.plan.jsonl'), '--format', 'markdown'], { cwd: dir.path, env });
    expect(review.code, show(review)).toBe(0);
    const first = orphanIds[0] as number;
    expect(review.stdout).toContain(
      `@@ id=${first} (delete) @@\n- id: ${first}\n- parent_id: ${parentOf(first)}\n- name: "kid ${first}"\n- score: ${first}.5\n- data: null\n`,
    );
    const changed = orphanIds[3] as number;
    const gone = orphanIds[4] as number;
    sqliteExec(db, "UPDATE kids SET name = 'edited after the plan' WHERE id = ?", changed);
    sqliteExec(db, 'DELETE FROM kids WHERE id = ?', gone);
    const applied = await runCli(['apply', plan, '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toMatchObject({ total: orphanIds.length, applied: orphanIds.length - 2, drifted: 2, failed: 0 });
    expect(applied.stderr).toContain(`! drifted kids id=${changed} (changed since the plan was made)`);
    expect(applied.stderr).toContain(`! drifted kids id=${gone} (no longer exists)`);
    expect(sqliteAll(db, 'SELECT name FROM kids WHERE id = ?', changed)).toEqual([{ name: 'edited after the plan' }]);
    const undo = await runCli(['undo', journalOf(applied.stderr), '--yes', '--json'], { cwd: dir.path, timeoutMs: 60_000 });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: orphanIds.length - 2, conflicts: 0 });
    const expected = before.rows.kids
      ?.filter((r) => Number(r.id) !== gone)
      .map((r) => (Number(r.id) === changed ? { ...r, name: 'edited after the plan' } : r));
    expect(dumpSqlite(db).rows.kids).toEqual(expected);
  });

  it('killed part-way (kill -9), resumed, then undone: ends as a clean run, and the one journal restores every row', async () => {
    const { dir, db, spec, env } = copy(DELETE_ORPHANS);
    const before = dumpSqlite(db);
    const victim = startCli(['run', spec, '--yes'], { cwd: dir.path, env });
    await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 2 });
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    const state = onlyState(dir.path);
    expect(state?.status).toBe('running');
    const resumed = await runCli(['run', spec, '--resume', '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    const orphans = new Set(orphanIds);
    expect(ids(db, 'kids')).toEqual(Array.from({ length: KIDS }, (_, i) => i + 1).filter((id) => !orphans.has(id)));
    const undo = await runCli(['undo', state?.journal as string, '--yes', '--json'], { cwd: dir.path, timeoutMs: 60_000 });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: orphanIds.length, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(before);
  });
});

describe('delete and undo of rows with generated columns', () => {
  it('undo creates the row again from its stored columns; SQLite computes the generated ones as before', async () => {
    const dir = tmp();
    const db = dir.file('gen.db');
    createDb(
      db,
      "CREATE TABLE items (id INTEGER PRIMARY KEY, price REAL, qty INTEGER, total REAL GENERATED ALWAYS AS (price * qty) STORED, label TEXT GENERATED ALWAYS AS ('#' || id) VIRTUAL, gone INTEGER); " +
        'INSERT INTO items (id, price, qty, gone) VALUES (1, 2.5, 4, 1), (2, 1.25, 2, 0), (3, 10.0, 1, 1)',
    );
    const before = dumpSqlite(db);
    const spec = dir.write(
      'fix.yaml',
      'name: delete-gone\ntarget: { sqlite: { path: "${DB}" } }\nsource: { table: items, as: item, where: { equals: { gone: 1 } } }\ndelete:\n  key: { id: "{{ item.id }}" }\n',
    );
    const r = await runCli(['run', spec, '--yes', '--json'], { cwd: dir.path, env: { DB: db } });
    expect(r.code, show(r)).toBe(0);
    expect(ids(db, 'items')).toEqual([2]);
    const undo = await runCli(['undo', journalOf(r.stderr), '--yes', '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: 2, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db).rows).toEqual(before.rows);
  });
});

describe('delete and undo of rows keyed by their rowid', () => {
  it('a table without a primary key, its rows fetched by rowid: undo creates each again under its own rowid', async () => {
    const dir = tmp();
    const db = dir.file('rowid.db');
    createDb(
      db,
      "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('a'), ('b'), ('c'), ('d'); CREATE TABLE marks (id INTEGER PRIMARY KEY, note INTEGER); INSERT INTO marks VALUES (1, 2), (2, 4)",
    );
    const rowids = () => sqliteAll<{ rowid: number; body: string }>(db, 'SELECT rowid, body FROM notes ORDER BY rowid');
    const before = rowids();
    const spec = dir.write(
      'fix.yaml',
      'name: delete-marked\ntarget: { sqlite: { path: "${DB}" } }\nsource: { table: marks, as: mark }\ndelete:\n  table: notes\n  key: { rowid: "{{ mark.note }}" }\n',
    );
    const r = await runCli(['run', spec, '--yes', '--json'], { cwd: dir.path, env: { DB: db } });
    expect(r.code, show(r)).toBe(0);
    expect(rowids()).toEqual([
      { rowid: 1, body: 'a' },
      { rowid: 3, body: 'c' },
    ]);
    const undo = await runCli(['undo', journalOf(r.stderr), '--yes', '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(rowids()).toEqual(before);
  });
});

describe('create on SQLite through the CLI', () => {
  it('run creates each missing parent once; undo deletes those unchanged since, and keeps one edited since', async () => {
    const { dir, db, spec, env } = copy(CREATE_PARENTS);
    const before = dumpSqlite(db);
    const r = await runCli(['run', spec, '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: KIDS, updated: missingParents.length, failed: 0 });
    expect(sqliteAll(db, 'SELECT id, name FROM parents WHERE id >= 1000 ORDER BY id')).toEqual(
      missingParents.map((p) => ({ id: p, name: `restored for kid ${firstKidOf.get(p)}` })),
    );
    const journal = journalOf(r.stderr);
    expect(jsonLines(journal)[0]).toMatchObject({ format: 5 });
    const edited = missingParents[2] as number;
    sqliteExec(db, "UPDATE parents SET name = 'renamed by hand' WHERE id = ?", edited);
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path, timeoutMs: 60_000 });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ restored: missingParents.length - 1, conflicts: 1 });
    expect(undo.stderr).toContain('changed since the run created it (name); it was left alone');
    expect(sqliteAll(db, 'SELECT id, name FROM parents WHERE id >= 1000')).toEqual([{ id: edited, name: 'renamed by hand' }]);
    sqliteExec(db, 'DELETE FROM parents WHERE id = ?', edited);
    expect(dumpSqlite(db)).toEqual(before);
  });

  it('undo keeps a created row whose other columns someone filled in since; defaults alone are no change', async () => {
    const dir = tmp();
    const db = dir.file('shop.db');
    createDb(
      db,
      `CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT, note TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP, status TEXT DEFAULT 'new');
       CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER);
       INSERT INTO parents (id, name, note) VALUES (1, 'p1', NULL);
       INSERT INTO kids VALUES (10, 1), (11, 2), (12, 3), (13, 4);`,
    );
    const spec = dir.write(
      'create.yaml',
      CREATE_PARENTS.replace(
        'source: { table: kids, as: kid, pageSize: 100 }',
        'source: { table: kids, as: kid, pageSize: 100, where: { gt: { parent_id: 1 } } }',
      ),
    );
    const env = { DB: db };
    const r = await runCli(['run', spec, '--yes', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    expect(ids(db, 'parents')).toEqual([1, 2, 3, 4]);
    // Someone fills in a column the create did not write, on row 2; row 3 only gets its status changed.
    sqliteExec(db, "UPDATE parents SET note = 'customer called, keep' WHERE id = 2");
    sqliteExec(db, "UPDATE parents SET status = 'checked' WHERE id = 3");
    const undo = await runCli(['undo', journalOf(r.stderr), '--yes', '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ restored: 1, conflicts: 2 });
    expect(undo.stderr).toContain('changed since the run created it (note); it was left alone');
    expect(undo.stderr).toContain('changed since the run created it (status); it was left alone');
    expect(sqliteAll(db, 'SELECT id, note, status FROM parents ORDER BY id')).toEqual([
      { id: 1, note: null, status: 'new' },
      { id: 2, note: 'customer called, keep', status: 'new' },
      { id: 3, note: null, status: 'checked' },
    ]);
  });

  it('a saved plan made before someone created one of its rows refuses to create over it (drifted)', async () => {
    const { dir, db, spec, env } = copy(CREATE_PARENTS);
    const plan = dir.file('create.plan.jsonl');
    const planned = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(planned.code, show(planned)).toBe(0);
    const taken = missingParents[0] as number;
    sqliteExec(db, "INSERT INTO parents VALUES (?, 'theirs')", taken);
    const applied = await runCli(['apply', plan, '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toMatchObject({ applied: missingParents.length - 1, drifted: 1 });
    expect(applied.stderr).toContain(`! drifted parents id=${taken} (a record with this key exists)`);
    expect(sqliteAll(db, 'SELECT name FROM parents WHERE id = ?', taken)).toEqual([{ name: 'theirs' }]);
  });

  it('killed part-way (kill -9), resumed, then undone: every parent created once, and the journal deletes exactly them', async () => {
    const { dir, db, spec, env } = copy(CREATE_PARENTS);
    const before = dumpSqlite(db);
    const victim = startCli(['run', spec, '--yes'], { cwd: dir.path, env });
    await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 2 });
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    const state = onlyState(dir.path);
    const resumed = await runCli(['run', spec, '--resume', '--yes', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(ids(db, 'parents')).toEqual([...Array.from({ length: PARENTS }, (_, i) => i + 1), ...missingParents]);
    const undo = await runCli(['undo', state?.journal as string, '--yes', '--json'], { cwd: dir.path, timeoutMs: 60_000 });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: missingParents.length, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(before);
  });
});
