/**
 * examples/delete-orphan-comments.yaml end to end on a real SQLite file: its own `datafix test`
 * cases pass, and a live run deletes exactly the comments whose post is missing (computed here
 * from the seeded rows), and undo puts every one of them back.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dumpSqlite, jsonSummary, show, sqliteAll } from '../safety/support.js';
import { createDb } from '../sqlite/fixtures.js';

const FIX = fileURLToPath(new URL('../../examples/delete-orphan-comments.yaml', import.meta.url));
const CASES = fileURLToPath(new URL('../../examples/delete-orphan-comments.test.yaml', import.meta.url));
const tmp = useTempDirs();

describe('examples/delete-orphan-comments.yaml', () => {
  it('passes its own datafix test cases', async () => {
    const r = await runCli(['test', CASES], { cwd: tmp().path });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('2 passed, 0 failed');
  });

  it('deletes exactly the comments whose post is missing; undo restores the database as it was', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    const posts = [1, 2, 3, 5, 8];
    const comments = Array.from({ length: 300 }, (_, i) => ({
      id: i + 1,
      post_id: i % 11 === 0 ? null : (i % 10) + 1,
      body: `comment ${i + 1}`,
    }));
    createDb(
      db,
      'CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, body TEXT NOT NULL); ' +
        `INSERT INTO posts VALUES ${posts.map((p) => `(${p}, 'post ${p}')`).join(',')}; ` +
        `INSERT INTO comments VALUES ${comments.map((c) => `(${c.id}, ${c.post_id ?? 'NULL'}, '${c.body}')`).join(',')}`,
    );
    const before = dumpSqlite(db);
    // Independently of datafix: a comment stays when it has no post_id or its post exists.
    const kept = comments.filter((c) => c.post_id === null || posts.includes(c.post_id));
    const orphans = comments.length - kept.length;

    const env = { APP_DB_PATH: db };
    // The summary a person reads counts deletions as deletions.
    const dry = await runCli(['run', FIX, '--dry-run'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(0);
    expect(`${dry.stdout}${dry.stderr}`).toMatch(new RegExp(`^ +deleted +${orphans} \\(would be deleted\\)$`, 'm'));
    expect(`${dry.stdout}${dry.stderr}`).not.toMatch(/^ +updated /m);
    expect(dumpSqlite(db)).toEqual(before);

    const r = await runCli(['run', FIX, '--yes', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({
      action: 'delete',
      total: comments.length,
      updated: orphans,
      skipped: kept.length,
      failed: 0,
      reasons: {
        no_post_id: comments.filter((c) => c.post_id === null).length,
        post_exists: kept.filter((c) => c.post_id !== null).length,
      },
    });
    expect(sqliteAll(db, 'SELECT id, post_id, body FROM comments ORDER BY id')).toEqual(kept);
    expect(sqliteAll(db, 'SELECT id FROM posts ORDER BY id')).toEqual(posts.map((id) => ({ id })));

    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: orphans, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(before);
  });
});
