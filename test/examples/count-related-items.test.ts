/**
 * examples/count-related-items.yaml end to end: its own test file passes under `datafix test`,
 * and `datafix run` on a real SQLite file leaves each post as computed here from the seeded rows
 * alone (plain JS, no datafix).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query } from '../sqlite/fixtures.js';

const tempDir = useTempDirs();
const FIX = `${REPO_ROOT}examples/count-related-items.yaml`;
/** The fix's `max`, read from the file so the test follows it. */
const MAX = Number(/max: (\d+)/.exec(readFileSync(FIX, 'utf8'))?.[1]);

interface Comment {
  id: number;
  post_id: number;
  deleted: number;
}

describe('example: count-related-items', () => {
  it('passes its own fix tests', async () => {
    const r = await runCli(['test', 'examples/count-related-items.test.yaml']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('4 passed, 0 failed');
    expect(r.code).toBe(0);
  });

  it('sets comment_count to the comments not deleted on a real database; none is 0, more than max a failure', async () => {
    const dir = tempDir();
    const db = dir.file('blog.db');
    const posts = Array.from({ length: 40 }, (_, i) => i + 1);
    // Post p gets (p * 7) % (2 * MAX) comments, every third of them deleted; ids descend, so
    // insertion order is not key order.
    const comments: Comment[] = [];
    let id = 100_000;
    for (const p of posts)
      for (let c = 0; c < (p * 7) % (2 * MAX); c++) comments.push({ id: id--, post_id: p, deleted: c % 3 === 2 ? 1 : 0 });
    createDb(
      db,
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, comment_count INTEGER, updated_at TEXT);
       CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, deleted INTEGER, body TEXT);
       CREATE INDEX comments_by_post ON comments (post_id);
       INSERT INTO posts (id, title) VALUES ${posts.map((p) => `(${p}, 't')`).join(', ')};
       INSERT INTO comments (id, post_id, deleted) VALUES ${comments.map((c) => `(${c.id}, ${c.post_id}, ${c.deleted})`).join(', ')};`,
    );

    const r = await runCli(['run', FIX, '--yes', '--json'], { env: { BLOG_DB_PATH: db } });

    const live = (p: number) => comments.filter((c) => c.post_id === p && c.deleted === 0).map((c) => c.id);
    const expected = posts.map((p) => {
      const count = live(p).length;
      return { id: p, comment_count: count <= MAX ? count : null };
    });
    expect(query(db, 'SELECT id, comment_count FROM posts ORDER BY id')).toEqual(expected);
    const n = posts.map((p) => live(p).length);
    // The data has every outcome: posts with none, some, and more than max.
    expect(new Set(n.map((k) => (k === 0 ? 'none' : k > MAX ? 'over' : 'some')))).toEqual(new Set(['none', 'some', 'over']));
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    expect(summary).toMatchObject({
      total: posts.length,
      updated: n.filter((k) => k <= MAX).length,
      skipped: 0,
      failed: n.filter((k) => k > MAX).length,
      reasons: { lookup_over_max: n.filter((k) => k > MAX).length },
    });
    expect(r.code).toBe(1);
  });
});
