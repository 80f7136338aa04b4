/**
 * Lookups of several rows on a real SQLite file: a `where` on another table whose `equals`
 * values are templates, bounded by `max`, answered with one statement per page, in the table's
 * key order, compared as SQLite compares (affinity, collation), exact integers kept.
 */
import { describe, expect, it } from 'vitest';
import { DatafixError, type Diagnostic } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tempDir = useTempDirs();

/** A database file in a fresh temp dir, made from `sql`. */
function dbOf(sql: string): string {
  const db = tempDir().file('lookup.db');
  createDb(db, sql);
  return db;
}

/** Comment counts per post: 0, 1, 3, MAX and MAX + 1, cycling; bodies name their comment. */
const MAX = 4;
const POSTS = 10;
const commentsOf = (post: number) => [0, 1, 3, MAX, MAX + 1][post % 5] as number;

function seed(path: string): { id: number; post_id: number; body: string; hidden: number }[] {
  const comments: { id: number; post_id: number; body: string; hidden: number }[] = [];
  let id = 1000;
  // Inserted newest key first, so the key order the lookup promises is not the insertion order.
  for (let post = POSTS; post >= 1; post--) {
    for (let c = 0; c < commentsOf(post); c++) comments.push({ id: id--, post_id: post, body: `p${post}c${c}`, hidden: 0 });
  }
  const values = comments.map((c) => `(${c.id}, ${c.post_id}, '${c.body}', ${c.hidden})`).join(', ');
  createDb(
    path,
    `CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, first_comment TEXT, comments_json TEXT);
     CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER, body TEXT, hidden INTEGER);
     INSERT INTO posts (id, title) VALUES ${Array.from({ length: POSTS }, (_, i) => `(${i + 1}, 't${i + 1}')`).join(', ')};
     INSERT INTO comments VALUES ${values};`,
  );
  return comments;
}

const postsSpec = (db: string, extra = '') => `name: first-comments
${sqliteTarget(db)}source:
  as: post
  table: posts
  pageSize: 4
lookups:
  comments:
    table: comments
    where: { equals: { post_id: "{{ post.id }}" } }
    max: ${MAX}
skip:
  - { reason: no_comments, when: { missing: "comments[0]" } }
update:
  key: { id: "{{ post.id }}" }
  set:
    first_comment: "{{ comments[0].body }}"
    comments_json: "{{ comments }}"
${extra}`;

describe('SQLite lookups of several rows', () => {
  it('gives each row its related rows in key order; no rows is a skip, more than max fails with lookup_over_max', async () => {
    const dir = tempDir();
    const db = dir.file('blog.db');
    const comments = seed(db);
    const run = await runYaml(postsSpec(db));

    // Expected from the seeded rows alone: each post's comments sorted by id.
    const byPost = new Map<number, typeof comments>();
    for (const c of comments)
      byPost.set(
        c.post_id,
        [...(byPost.get(c.post_id) ?? []), c].sort((a, b) => a.id - b.id),
      );
    const rows = query<{ id: number; first_comment: string | null; comments_json: string | null }>(
      db,
      'SELECT id, first_comment, comments_json FROM posts ORDER BY id',
    );
    const written = (mine: typeof comments) => mine.length > 0 && mine.length <= MAX;
    expect(rows.map((r) => [r.id, r.first_comment, JSON.parse(r.comments_json ?? 'null')])).toEqual(
      rows.map((r) => {
        const mine = byPost.get(r.id) ?? [];
        return written(mine) ? [r.id, mine[0]?.body, mine] : [r.id, null, null];
      }),
    );
    expect(rows.map((r) => [r.id, run.outcomes.get(r.id)?.outcome, run.outcomes.get(r.id)?.reason])).toEqual(
      rows.map((r) => {
        const n = byPost.get(r.id)?.length ?? 0;
        return [r.id, ...(n === 0 ? ['skipped', 'no_comments'] : n > MAX ? ['failed', 'lookup_over_max'] : ['updated', undefined])];
      }),
    );
    const counts = [...Array(POSTS).keys()].map((i) => commentsOf(i + 1));
    expect(run.summary).toMatchObject({
      total: POSTS,
      updated: counts.filter((n) => n > 0 && n <= MAX).length,
      skipped: counts.filter((n) => n === 0).length,
      failed: counts.filter((n) => n > MAX).length,
      reasons: { no_comments: counts.filter((n) => n === 0).length, lookup_over_max: counts.filter((n) => n > MAX).length },
    });
    expect(run.outcomes.get(4)?.message).toContain(`more than ${MAX} rows of \`comments\``);
    // One statement per page of posts (10 posts, 4 per page), never one per post.
    expect(run.requests.lookupMany).toBe(Math.ceil(POSTS / 4));
    expect(run.requests.lookup).toBeUndefined();
  });

  it('binds template values as the column compares them: affinity and collation, and keeps 64-bit integers exact', async () => {
    const dir = tempDir();
    const db = dir.file('codes.db');
    const big = 9007199254740993n; // 2^53 + 1: a double would read it as ...992
    createDb(
      db,
      `CREATE TABLE users (id INTEGER PRIMARY KEY, code INTEGER, email TEXT, tags TEXT, first_tag_id INTEGER);
       CREATE TABLE tags (id INTEGER PRIMARY KEY, user_code TEXT, owner TEXT COLLATE NOCASE, label TEXT, weight REAL);
       INSERT INTO users (id, code, email) VALUES (1, 7, 'Ann@X.io'), (2, 8, 'bob@x.io'), (3, 9, 'cy@x.io');
       INSERT INTO tags VALUES (${big}, '7', 'ann@x.io', 'a', 2.5), (5, '7', 'ANN@X.IO', 'b', 2.0), (6, '8', 'someone@else', 'c', 1), (7, '9', 'CY@X.IO', 'd', 0.5);`,
    );
    // user_code is TEXT: the INTEGER 7 takes the column's affinity and matches '7', as SQLite's
    // user_code = 7 does; owner is NOCASE: 'Ann@X.io' matches 'ann@x.io' and 'ANN@X.IO'.
    const run = await runYaml(`name: tags
${sqliteTarget(db)}source: { as: u, table: users }
lookups:
  tags:
    table: tags
    where: { all: [ { equals: { user_code: "{{ u.code }}", owner: "{{ u.email }}" } }, { not: { equals: { label: c } } } ] }
    max: 5
skip:
  - { reason: no_tags, when: { missing: "tags[0]" } }
update:
  key: { id: "{{ u.id }}" }
  set: { tags: "{{ tags }}", first_tag_id: "{{ tags[0].id }}" }
`);
    const rows = query<{ id: number; tags: string | null; first_tag_id: bigint | null }>(
      db,
      'SELECT id, tags, first_tag_id FROM users ORDER BY id',
      [],
      { safeIntegers: true },
    );
    expect(
      rows.map((r) => [Number(r.id), r.tags === null ? null : (JSON.parse(r.tags) as { label: string }[]).map((t) => t.label)]),
    ).toEqual([
      [1, ['b', 'a']], // key order: 5 before 2^53 + 1
      [2, null], // its only tag is excluded by the constant part of `where`
      [3, ['d']],
    ]);
    expect(rows.map((r) => r.first_tag_id)).toEqual([5n, null, 7n]);
    // The big id is written into the JSON text with every digit, the REAL 2.0 as a REAL.
    expect(rows[0]?.tags).toContain(`"id":${big}`);
    expect(rows[0]?.tags).toContain('"id":5,"user_code":"7","owner":"ANN@X.IO","label":"b","weight":2.0}');
    expect(run.outcomes.get(2)).toMatchObject({ outcome: 'skipped', reason: 'no_tags' });
    expect(run.requests.lookupMany).toBe(1);
  });

  it("`beginsWith` and `contains` in its `where` compare by the column's collation, as in the source's `where`", async () => {
    // code is NOCASE, raw is BINARY, both holding the same text.
    const db = dbOf(
      `CREATE TABLE users (id INTEGER PRIMARY KEY, by_code TEXT, by_raw TEXT, has_code TEXT);
       CREATE TABLE tags (id INTEGER PRIMARY KEY, owner INTEGER, code TEXT COLLATE NOCASE, raw TEXT);
       INSERT INTO users (id) VALUES (1), (2);
       INSERT INTO tags VALUES (1, 1, 'ABC', 'ABC'), (2, 1, 'abd', 'abd'), (3, 1, 'xab', 'xab'), (4, 1, 'Ab', 'Ab'), (5, 1, 'b', 'b'),
         (6, 2, 'aB', 'aB');`,
    );
    const lookup = (name: string, cond: string) =>
      `  ${name}:\n    table: tags\n    where: { all: [ { equals: { owner: "{{ u.id }}" } }, ${cond} ] }\n    max: 10\n`;
    await runYaml(`name: prefixes
${sqliteTarget(db)}source: { as: u, table: users }
lookups:
${lookup('byCode', '{ beginsWith: { code: ab } }')}${lookup('byRaw', '{ beginsWith: { raw: ab } }')}${lookup('hasCode', '{ contains: { code: AB } }')}
update:
  key: { id: "{{ u.id }}" }
  set: { by_code: "{{ byCode }}", by_raw: "{{ byRaw }}", has_code: "{{ hasCode }}" }
`);
    const ids = (json: string) => (JSON.parse(json) as { id: number }[]).map((t) => t.id);
    const rows = query<{ by_code: string; by_raw: string; has_code: string }>(db, 'SELECT * FROM users ORDER BY id');
    // NOCASE: 'ABC', 'abd' and 'Ab' start with "ab" ignoring case, 'xab' holds "AB" too; BINARY:
    // only 'abd' starts with "ab".
    expect(rows.map((r) => [ids(r.by_code), ids(r.by_raw), ids(r.has_code)])).toEqual([
      [[1, 2, 4], [2], [1, 2, 3, 4]],
      [[6], [], [6]],
    ]);
  });

  it('a column of the listed rows that the table lacks is refused before anything is read (DF405)', async () => {
    const dir = tempDir();
    const db = dir.file('typo.db');
    seed(db);
    await expect(runYaml(postsSpec(db).replace('comments[0].body', 'comments[0].bdy'))).rejects.toMatchObject({
      code: 'DF405',
      message: expect.stringContaining('`comments[0].bdy` reads column `bdy`, which table `comments` does not have'),
    });
    expect(query(db, 'SELECT count(*) AS n FROM posts WHERE first_comment IS NOT NULL')).toEqual([{ n: 0 }]);
  });

  it('a row whose template value is missing matches nothing: an empty list, no statement for it', async () => {
    const dir = tempDir();
    const db = dir.file('missing.db');
    createDb(
      db,
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, ref TEXT, first_comment TEXT);
       CREATE TABLE comments (id INTEGER PRIMARY KEY, ref TEXT, body TEXT);
       INSERT INTO posts (id, ref) VALUES (1, NULL), (2, '');
       INSERT INTO comments VALUES (1, '', 'empty ref'), (2, NULL, 'null ref');`,
    );
    const run = await runYaml(`name: refs
${sqliteTarget(db)}source: { as: post, table: posts }
lookups:
  comments: { table: comments, where: { equals: { ref: "{{ post.ref }}" } }, max: 5 }
skip:
  - { reason: no_comments, when: { missing: "comments[0]" } }
update:
  key: { id: "{{ post.id }}" }
  set: { first_comment: "{{ comments[0].body }}" }
`);
    expect(run.summary).toMatchObject({ total: 2, skipped: 2, reasons: { no_comments: 2 } });
    expect(run.requests.lookupMany).toBeUndefined();
  });
});

function diagnostics(text: string): readonly Diagnostic[] {
  try {
    compileYaml(text);
  } catch (err) {
    if (err instanceof DatafixError) return err.diagnostics;
    throw err;
  }
  throw new Error('the spec compiled');
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('validate: lookups of several rows', () => {
  const base = (lookup: string, skip = '  - { reason: none, when: { missing: "comments[0]" } }') => `name: v
target:
  sqlite:
    path: /data/blog.db
source: { as: post, table: posts }
lookups:
  comments:
${lookup}
skip:
${skip}
update:
  key: { id: "{{ post.id }}" }
  set: { n: "{{ comments[0].id }}" }
`;

  it.each([
    [
      'max missing',
      '    table: comments\n    where: { equals: { post_id: "{{ post.id }}" } }',
      'DF270',
      '  comments:',
      '/lookups/comments',
    ],
    [
      'max below 1',
      '    table: comments\n    where: { equals: { post_id: "{{ post.id }}" } }\n    max: 0',
      'DF105',
      'max: 0',
      '/lookups/comments/max',
    ],
    [
      'a template naming an unknown root',
      '    table: comments\n    where: { equals: { post_id: "{{ pots.id }}" } }\n    max: 5',
      'DF201',
      'pots.id',
      '/lookups/comments/where/equals/post_id',
    ],
    [
      'a column that is not an identifier',
      '    table: comments\n    where: { equals: { "post id": "{{ post.id }}" } }\n    max: 5',
      'DF205',
      'post id',
      '/lookups/comments/where/equals/post id',
    ],
    [
      'a template outside a top-level equals',
      '    table: comments\n    where: { all: [ { equals: { post_id: "{{ post.id }}" } }, { not: { equals: { author: "{{ post.author }}" } } } ] }\n    max: 5',
      'DF271',
      'post.author',
      '/lookups/comments/where/all/1',
    ],
    ['max with get', '    table: comments\n    get: { id: "{{ post.id }}" }\n    max: 5', 'DF270', 'max: 5', '/lookups/comments/max'],
    [
      'a DynamoDB query on SQLite',
      '    query: { key: { PK: "P#{{ post.id }}" } }\n    max: 5',
      'DF205',
      'query:',
      '/lookups/comments/query',
    ],
  ])('%s is refused at its line', (_what, lookup, code, needle, path) => {
    const text = base(lookup);
    const found = diagnostics(text);
    expect(found.map((d) => [d.code, d.path, d.line])).toContainEqual([code, path, lineOf(text, needle)]);
  });

  it('a field read from the list without a position is DF272 at its line', () => {
    const text = base(
      '    table: comments\n    where: { equals: { post_id: "{{ post.id }}" } }\n    max: 5',
      '  - { reason: none, when: { missing: comments.body } }',
    );
    const found = diagnostics(text);
    expect(found.map((d) => [d.code, d.path, d.line])).toEqual([['DF272', '/skip/0/when', lineOf(text, 'comments.body')]]);
    expect(found[0]?.message).toContain('comments[0].body');
  });
});

describe('SQLite lookups of several rows: larger pages and rules', () => {
  it('a page with more keys than one statement may bind is split into statements under the limit', async () => {
    const dir = tempDir();
    const db = dir.file('wide.db');
    // Two bound values per key, one for the constant part of `where` and one for max: 16,382 keys
    // (32,766 parameters) fit one statement, 20,000 do not.
    const n = 20_000;
    const posts = Array.from({ length: n }, (_, i) => `(${i + 1}, 'g${i % 7}', ${i + 1})`).join(', ');
    createDb(
      db,
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, grp TEXT, num INTEGER, seen INTEGER);
       CREATE TABLE marks (id INTEGER PRIMARY KEY, grp TEXT, num INTEGER);
       INSERT INTO posts (id, grp, num) VALUES ${posts};
       INSERT INTO marks VALUES (1, 'g0', 1), (2, 'g1', 7), (3, 'g6', 19999), (4, 'g0', 20000);`,
    );
    const run = await runYaml(`name: wide
${sqliteTarget(db)}source: { as: p, table: posts, pageSize: ${n} }
lookups:
  marks: { table: marks, where: { all: [ { equals: { grp: "{{ p.grp }}", num: "{{ p.num }}" } }, { not: { equals: { id: 0 } } } ] }, max: 1 }
skip:
  - { reason: unmarked, when: { missing: "marks[0]" } }
update:
  key: { id: "{{ p.id }}" }
  set: { seen: "{{ marks[0].id }}" }
`);
    // Post k has (g{(k - 1) % 7}, k): marks 1, 3 and 4 name posts 1, 19999 and 20000 (the last two
    // in the second statement); mark 2 names none (post 7 is in g6).
    expect(query(db, 'SELECT id, seen FROM posts WHERE seen IS NOT NULL ORDER BY id')).toEqual([
      { id: 1, seen: 1 },
      { id: 19999, seen: 3 },
      { id: 20000, seen: 4 },
    ]);
    expect(run.summary).toMatchObject({ total: n, updated: 3, skipped: n - 3 });
    expect(run.requests.lookupMany).toBe(2);
  });

  it('records naming the same rows share one entry of the statement, and each gets all of them', async () => {
    const db = dbOf(
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, ref TEXT, got TEXT);
       CREATE TABLE comments (id INTEGER PRIMARY KEY, ref TEXT COLLATE NOCASE, body TEXT);
       INSERT INTO posts (id, ref) VALUES (1, 'x'), (2, 'y'), (3, 'X'), (4, 'x');
       INSERT INTO comments VALUES (10, 'x', 'a'), (11, 'Y', 'b'), (12, 'X', 'c');`,
    );
    const run = await runYaml(`name: shared
${sqliteTarget(db)}source: { as: post, table: posts }
lookups:
  comments: { table: comments, where: { equals: { ref: "{{ post.ref }}" } }, max: 3 }
update:
  key: { id: "{{ post.id }}" }
  set: { got: "{{ comments }}" }
`);
    // ref is NOCASE: 'x' and 'X' name the same rows (10 and 12), 'y' row 11.
    const bodies = (json: string) => (JSON.parse(json) as { body: string }[]).map((c) => c.body);
    expect(query<{ got: string }>(db, 'SELECT got FROM posts ORDER BY id').map((r) => bodies(r.got))).toEqual([
      ['a', 'c'],
      ['b'],
      ['a', 'c'],
      ['a', 'c'],
    ]);
    expect(run.requests.lookupMany).toBe(1);
  });

  it('a skip rule on a field of a listed row compares as its column does (affinity)', async () => {
    const dir = tempDir();
    const db = dir.file('rule.db');
    createDb(
      db,
      `CREATE TABLE users (id INTEGER PRIMARY KEY, note TEXT);
       CREATE TABLE flags (id INTEGER PRIMARY KEY, user_id INTEGER, level TEXT);
       INSERT INTO users (id) VALUES (1), (2);
       INSERT INTO flags VALUES (10, 1, '200'), (11, 2, '300');`,
    );
    // level is TEXT: the number 200 takes the column's affinity and equals the text '200'.
    const run = await runYaml(`name: rule
${sqliteTarget(db)}source: { as: u, table: users }
lookups:
  flags: { table: flags, where: { equals: { user_id: "{{ u.id }}" } }, max: 3 }
skip:
  - { reason: level_200, when: { equals: { "flags[0].level": 200 } } }
update:
  key: { id: "{{ u.id }}" }
  set: { note: "{{ flags[0].level }}" }
`);
    expect(query(db, 'SELECT id, note FROM users ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: '300' },
    ]);
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'skipped', reason: 'level_200' });
  });

  it('a table without a primary key lists its rows in rowid order, each row as stored (no column of its own added)', async () => {
    const db = dbOf(
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, notes TEXT);
       CREATE TABLE notes (post_id INTEGER, body TEXT);
       INSERT INTO posts (id) VALUES (1), (2);
       INSERT INTO notes VALUES (2, 'z first'), (1, 'b'), (2, 'a second'), (1, 'a');`,
    );
    await runYaml(`name: rowid-notes
${sqliteTarget(db)}source: { as: post, table: posts }
lookups:
  notes: { table: notes, where: { equals: { post_id: "{{ post.id }}" } }, max: 5 }
update:
  key: { id: "{{ post.id }}" }
  set: { notes: "{{ notes }}" }
`);
    expect(query(db, 'SELECT id, notes FROM posts ORDER BY id')).toEqual([
      { id: 1, notes: '[{"post_id":1,"body":"b"},{"post_id":1,"body":"a"}]' },
      { id: 2, notes: '[{"post_id":2,"body":"z first"},{"post_id":2,"body":"a second"}]' },
    ]);
  });

  it('a table with a composite primary key lists its rows in that key order', async () => {
    const db = dbOf(
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, grp TEXT, got TEXT);
       CREATE TABLE marks (grp TEXT, num INTEGER, PRIMARY KEY (grp, num));
       INSERT INTO posts (id, grp) VALUES (1, 'a'), (2, 'b');
       INSERT INTO marks VALUES ('a', 30), ('b', 5), ('a', 10), ('a', 20);`,
    );
    await runYaml(`name: composite
${sqliteTarget(db)}source: { as: post, table: posts }
lookups:
  marks: { table: marks, where: { equals: { grp: "{{ post.grp }}" } }, max: 5 }
update:
  key: { id: "{{ post.id }}" }
  set: { got: "{{ marks }}" }
`);
    expect(query(db, 'SELECT id, got FROM posts ORDER BY id')).toEqual([
      { id: 1, got: '[{"grp":"a","num":10},{"grp":"a","num":20},{"grp":"a","num":30}]' },
      { id: 2, got: '[{"grp":"b","num":5}]' },
    ]);
  });

  it('a `where` without a template gives every record the same rows, bounded by max', async () => {
    const db = dbOf(
      `CREATE TABLE posts (id INTEGER PRIMARY KEY, pinned TEXT);
       CREATE TABLE notices (id INTEGER PRIMARY KEY, pinned INTEGER, body TEXT);
       INSERT INTO posts (id) VALUES (1), (2);
       INSERT INTO notices VALUES (30, 1, 'c'), (10, 1, 'a'), (20, 0, 'b');`,
    );
    const spec = (max: number) => `name: pinned
${sqliteTarget(db)}source: { as: post, table: posts }
lookups:
  pins: { table: notices, where: { equals: { pinned: 1 } }, max: ${max} }
update:
  key: { id: "{{ post.id }}" }
  set: { pinned: "{{ pins }}" }
`;
    const over = await runYaml(spec(1));
    expect(over.summary).toMatchObject({ total: 2, updated: 0, failed: 2, reasons: { lookup_over_max: 2 } });
    expect(over.outcomes.get(1)?.message).toBe('more than 1 rows of `notices` match (max: 1)');
    await runYaml(spec(2));
    const pins = '[{"id":10,"pinned":1,"body":"a"},{"id":30,"pinned":1,"body":"c"}]';
    expect(query(db, 'SELECT id, pinned FROM posts ORDER BY id')).toEqual([
      { id: 1, pinned: pins },
      { id: 2, pinned: pins },
    ]);
  });

  it('datafix test infers the lookup table from the fix: its columns from `where`, rows in the order given', async () => {
    const dir = tempDir();
    dir.write(
      'firsts.yaml',
      `name: firsts
target: { sqlite: { path: /unused.db } }
source: { as: post, table: posts }
lookups:
  comments: { table: comments, where: { all: [ { equals: { post_id: "{{ post.id }}" } }, { equals: { hidden: 0 } } ] }, max: 2 }
skip:
  - { reason: none, when: { missing: "comments[0]" } }
update:
  key: { id: "{{ post.id }}" }
  set: { first: "{{ comments[0].body }}" }
`,
    );
    const test = dir.write(
      'firsts.test.yaml',
      `cases:
  - name: each outcome
    given:
      posts: [ { id: 1 }, { id: 2 }, { id: 3 } ]
      comments:
        - { post_id: 1, hidden: 0, body: one }
        - { post_id: 1, hidden: 1, body: hidden }
        - { post_id: 3, hidden: 0, body: a }
        - { post_id: 3, hidden: 0, body: b }
        - { post_id: 3, hidden: 0, body: c }
    expect:
      summary: { total: 3, updated: 1, skipped: 1, failed: 1, reasons: { none: 1, lookup_over_max: 1 } }
      records:
        posts: [ { id: 1, first: one }, { id: 2, first: null }, { id: 3, first: null } ]
`,
    );
    const r = await runCli(['test', test]);
    expect(`${r.stdout}${r.stderr}`).toContain('1 passed, 0 failed');
    expect(r.code).toBe(0);
  });
});
