/**
 * Lookups of several items on the in-process DynamoDB (dynalite): a `query` whose key values are
 * templates, bounded by `max`, one Query per record at the run's concurrency, in sort-key order;
 * throttled Queries are retried; a key DynamoDB refuses fails its record alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { RecordEvent } from '../../src/engine/events.js';
import { runFix } from '../../src/engine/run.js';
import { DatafixError } from '../../src/errors.js';
import { explain } from '../../src/explain.js';
import { compileSpec } from '../../src/language/compile.js';
import { loadSpecText } from '../../src/language/load.js';
import type { FixSpec } from '../../src/language/types.js';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, getRawItem, type RunningDynalite, seedItems, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy, throttled } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';

const TABLE = 'blog-list-lookup';
const MAX = 3;
const POSTS = 9;
/** Comments per post: 0, 1, MAX, MAX + 1, cycling. */
const commentsOf = (post: number) => [0, 1, MAX, MAX + 1][post % 4] as number;
/** A vote count no double holds: it must reach the written list with every digit. */
const BIG = '12345678901234567890123456789012345678';
const MANY = 60;

let db: RunningDynalite;
let proxy: CountingProxy;
/** Query numbers (1-based, since the run started) to answer with a throttling error. */
let throttle = new Set<number>();
let queries = 0;
/** Items the Queries of a run returned. */
let returned = 0;

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  const items: Record<string, unknown>[] = [];
  for (let p = 1; p <= POSTS; p++) {
    items.push({ PK: `POST#p${p}`, SK: 'METADATA', kind: 'post', author: `a${p % 2}`, ref: p === 1 ? 5 : `POST#p${p}` });
    // Written newest first, so sort-key order is not write order.
    for (let c = commentsOf(p) - 1; c >= 0; c--) {
      items.push({ PK: `POST#p${p}`, SK: `COMMENT#${String(c).padStart(3, '0')}`, body: `p${p}c${c}`, votes: c });
    }
  }
  // Items by author on GSI8, for the index lookup.
  for (const [i, a] of ['a0', 'a1', 'a0'].entries()) {
    items.push({ PK: `NOTE#${i}`, SK: 'METADATA', GSI8PK: `AUTHOR#${a}`, GSI8SK: `NOTE#${i}`, text: `note${i}` });
  }
  await seedItems(db.endpoint, TABLE, items);
  await seedRawItems(db.endpoint, TABLE, [
    { PK: { S: 'POST#big' }, SK: { S: 'METADATA' }, kind: { S: 'post' } },
    { PK: { S: 'POST#big' }, SK: { S: 'COMMENT#000' }, body: { S: 'big' }, votes: { N: BIG } },
  ]);
  // A post with far more comments than any max: a lookup must not read them all.
  await seedItems(db.endpoint, TABLE, [
    { PK: 'POST#many', SK: 'METADATA', kind: 'post', author: 'a0', ref: 'POST#many' },
    ...Array.from({ length: MANY }, (_, c) => ({ PK: 'POST#many', SK: `COMMENT#${String(c).padStart(3, '0')}`, body: `m${c}` })),
  ]);
  proxy = await startCountingProxy(db.endpoint, {
    latencyMs: 20,
    // Counted here, not by the proxy's per-operation number, which concurrent requests share.
    fault: (r) => {
      if (r.operation !== 'Query') return undefined;
      queries++;
      if (throttle.has(queries)) return { respond: throttled() };
      return {
        afterForward: (real) => {
          returned += (real.body as { Count: number }).Count;
          return real;
        },
      };
    },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await db?.stop();
});

/** `datafix explain`'s text for a spec, compiled without its environment. */
function explainSpec(yaml: string): string {
  const loaded = loadSpecText(yaml, 'spec.yaml');
  return explain(loaded.data as FixSpec, compileSpec(loaded, { skipEnv: true }));
}

async function run(yaml: string, concurrency = 3) {
  const plan = compileSpec(loadSpecText(yaml, 'spec.yaml'), {});
  const adapter = await createDynamoAdapter(
    { backend: 'dynamodb', table: TABLE, region: 'us-east-1', endpoint: proxy.endpoint },
    { retryBaseMs: 1, maxAttempts: 1 },
  );
  const records: RecordEvent[] = [];
  try {
    await adapter.check(plan);
    proxy.reset();
    queries = 0;
    returned = 0;
    const summary = await runFix(plan, adapter, {
      dryRun: false,
      concurrency,
      retryBaseMs: 1,
      onEvent: (e) => {
        if (e.type === 'record') records.push(e);
      },
    });
    const outcome = (pk: string) => records.find((r) => r.key.PK === pk);
    return { summary, outcome, stats: adapter.stats(), peak: proxy.peakInFlight('Query') };
  } finally {
    await adapter.close();
  }
}

const header = `name: comments
target:
  dynamodb: { table: ${TABLE}, region: us-east-1, endpoint: "http://127.0.0.1:1" }
source:
  as: post
  scan: { filter: { equals: { kind: post } } }
`;

describe('DynamoDB lookups of several items', () => {
  it('queries each post once at the run concurrency: comments in sort-key order, none a skip, more than max fails', async () => {
    throttle = new Set([2, 3]);
    const r = await run(`${header}lookups:
  comments:
    query: { key: { PK: "{{ post.PK }}", SK: { beginsWith: "COMMENT#" } } }
    max: ${MAX}
skip:
  - { reason: no_comments, when: { missing: "comments[0]" } }
update:
  key: { PK: "{{ post.PK }}", SK: "{{ post.SK }}" }
  set: { firstComment: "{{ comments[0].body }}", comments: "{{ comments }}" }
`);
    // Expected from the seeded data alone.
    const expected = (p: number) =>
      Array.from({ length: commentsOf(p) }, (_, c) => ({
        body: `p${p}c${c}`,
        votes: String(c),
        SK: `COMMENT#${String(c).padStart(3, '0')}`,
      }));
    const seen: unknown[] = [];
    const want: unknown[] = [];
    for (let p = 1; p <= POSTS; p++) {
      const item = await getRawItem(db.endpoint, TABLE, { PK: { S: `POST#p${p}` }, SK: { S: 'METADATA' } });
      const list = item?.comments?.L?.map((c) => ({ body: c.M?.body?.S, votes: c.M?.votes?.N, SK: c.M?.SK?.S }));
      seen.push([p, item?.firstComment?.S, list, r.outcome(`POST#p${p}`)?.reason]);
      const n = commentsOf(p);
      const written = n > 0 && n <= MAX;
      want.push([
        p,
        written ? `p${p}c0` : undefined,
        written ? expected(p) : undefined,
        n === 0 ? 'no_comments' : n > MAX ? 'lookup_over_max' : undefined,
      ]);
    }
    expect(seen).toEqual(want);
    // The 38-digit vote count is written into the list as the number it is.
    const big = await getRawItem(db.endpoint, TABLE, { PK: { S: 'POST#big' }, SK: { S: 'METADATA' } });
    expect(big?.comments?.L?.[0]?.M?.votes).toEqual({ N: BIG });
    const counts = [...Array(POSTS).keys()].map((i) => commentsOf(i + 1));
    expect(r.summary).toMatchObject({
      total: POSTS + 2,
      updated: counts.filter((n) => n > 0 && n <= MAX).length + 1,
      skipped: counts.filter((n) => n === 0).length,
      failed: counts.filter((n) => n > MAX).length + 1,
    });
    expect(r.outcome('POST#many')).toMatchObject({ outcome: 'failed', reason: 'lookup_over_max' });
    // Each Query asked for at most max + 1 items: enough to know a post has more than max.
    expect(returned).toBe(counts.reduce((sum, n) => sum + Math.min(n, MAX + 1), 0) + 1 + (MAX + 1));
    // One Query per post (each reads at most max + 1 items, so none pages), two throttled
    // answers retried, and never more Queries in flight than the run's concurrency.
    expect(r.stats.Query).toBe(POSTS + 2 + 2);
    expect(r.stats.BatchGetItem).toBeUndefined();
    expect(r.peak).toBe(3);
  });

  it('queries an index with a templated sort-key condition; a key DynamoDB refuses fails that record alone with key_invalid', async () => {
    throttle = new Set();
    const r = await run(`${header}lookups:
  notes:
    query: { index: GSI8, key: { GSI8PK: "AUTHOR#{{ post.author }}", GSI8SK: { beginsWith: "NOTE#" } } }
    max: 5
  family:
    query: { key: { PK: "{{ post.ref }}" } }
    max: 10
skip:
  - { reason: no_notes, when: { missing: "notes[0]" } }
update:
  key: { PK: "{{ post.PK }}", SK: "{{ post.SK }}" }
  set: { notes: "{{ notes }}", firstOfFamily: "{{ family[0].SK }}" }
`);
    // From the seeded notes: a0 wrote note0 and note2, a1 note1 (GSI8SK order).
    const notesOf = (p: number) => (p % 2 === 0 ? ['note0', 'note2'] : ['note1']);
    const seen: unknown[] = [];
    const want: unknown[] = [];
    for (let p = 1; p <= POSTS; p++) {
      const item = await getRawItem(db.endpoint, TABLE, { PK: { S: `POST#p${p}` }, SK: { S: 'METADATA' } });
      seen.push([p, item?.notes?.L?.map((n) => n.M?.text?.S), item?.firstOfFamily?.S, r.outcome(`POST#p${p}`)?.reason]);
      // p1's ref is the number 5, which the table's S partition key cannot be: key_invalid, alone.
      // The others' first item in sort-key order: a comment ("C" < "M") where there is one.
      want.push(
        p === 1 ? [p, undefined, undefined, 'key_invalid'] : [p, notesOf(p), commentsOf(p) > 0 ? 'COMMENT#000' : 'METADATA', undefined],
      );
    }
    expect(seen).toEqual(want);
    // POST#big has no author: its key is missing, so it matches nothing (an empty list).
    expect(r.outcome('POST#big')).toMatchObject({ outcome: 'skipped', reason: 'no_notes' });
    expect(r.outcome('POST#many')).toMatchObject({ outcome: 'failed', reason: 'lookup_over_max' });
    expect(r.summary).toMatchObject({ total: POSTS + 2, updated: POSTS - 1, skipped: 1, failed: 2 });
  });
});

describe('datafix test and explain: lookups of several items', () => {
  const tempDir = useTempDirs();
  const fix = `name: comments
target: { dynamodb: { table: T } }
source: { as: post, scan: { filter: { equals: { SK: METADATA } } } }
lookups:
  comments:
    query: { key: { PK: "{{ post.PK }}", SK: { beginsWith: "COMMENT#" } } }
    max: 2
skip:
  - { reason: no_comments, when: { missing: "comments[0]" } }
update:
  key: { PK: "{{ post.PK }}", SK: "{{ post.SK }}" }
  set: { first: "{{ comments[0].body }}" }
`;

  it('runs on the embedded DynamoDB with tables inferred from the fix: every outcome of the lookup', async () => {
    const dir = tempDir();
    dir.write('comments.yaml', fix);
    const test = dir.write(
      'comments.test.yaml',
      `cases:
  - name: first comment in sort-key order; none is a skip; more than max fails
    given:
      target:
        - { PK: "POST#1", SK: METADATA }
        - { PK: "POST#1", SK: "COMMENT#2", body: second }
        - { PK: "POST#1", SK: "COMMENT#1", body: first }
        - { PK: "POST#2", SK: METADATA }
        - { PK: "POST#3", SK: METADATA }
        - { PK: "POST#3", SK: "COMMENT#1", body: a }
        - { PK: "POST#3", SK: "COMMENT#2", body: b }
        - { PK: "POST#3", SK: "COMMENT#3", body: c }
    expect:
      summary: { total: 3, updated: 1, skipped: 1, failed: 1, reasons: { no_comments: 1, lookup_over_max: 1 } }
      records:
        target:
          - { PK: "POST#1", SK: METADATA, first: first }
          - { PK: "POST#3", SK: METADATA, first: { $absent: true } }
`,
    );
    const r = await runCli(['test', test]);
    expect(`${r.stdout}${r.stderr}`).toContain('1 passed, 0 failed');
    expect(r.code).toBe(0);
  });

  it('explain says what the lookup reads, its order, its bound and how it is sent', () => {
    const text = explainSpec(fix);
    expect(text).toContain(
      '1. `comments`: every item of the target table where `PK` = `{{ post.PK }}` and `SK` begins with `COMMENT#`, in sort-key order, as a list of at most 2 (a record with more fails with reason `lookup_over_max`); one Query per record, paged.',
    );
    // Mermaid writes `#` as an entity code.
    expect(text).toContain('Lookup comments: every record where PK = {{ post.PK }} and SK begins with COMMENT#35; (max 2)');
  });
});

describe('validate and check: DynamoDB lookups of several items', () => {
  const spec = (lookup: string) => `name: v
target: { dynamodb: { table: ${TABLE} } }
source: { as: post, scan: {} }
lookups:
  comments:
${lookup}
update:
  key: { PK: "{{ post.PK }}", SK: "{{ post.SK }}" }
  set: { first: "{{ comments[0].body }}" }
`;
  const diagnostics = (text: string) => {
    try {
      compileSpec(loadSpecText(text, 'spec.yaml'), { skipEnv: true });
    } catch (err) {
      if (err instanceof DatafixError) return err.diagnostics.map((d) => [d.code, d.path, d.line]);
      throw err;
    }
    return [];
  };

  it.each([
    [
      'a SQLite where',
      '    table: comments\n    where: { equals: { post_id: "{{ post.id }}" } }\n    max: 5',
      'DF205',
      '/lookups/comments/where',
      7,
    ],
    [
      'a template naming an unknown root',
      '    query: { key: { PK: "{{ psot.PK }}" } }\n    max: 5',
      'DF201',
      '/lookups/comments/query/key/PK',
      6,
    ],
    [
      'a sort-key template naming a later lookup',
      '    query: { key: { PK: "{{ post.PK }}", SK: { beginsWith: "{{ later.x }}" } } }\n    max: 5\n  later: { get: { PK: a, SK: b } }',
      'DF202',
      '/lookups/comments/query/key/SK/beginsWith',
      6,
    ],
    ['max missing', '    query: { key: { PK: "{{ post.PK }}" } }', 'DF270', '/lookups/comments', 5],
  ])('%s is refused at its line', (_what, lookup, code, path, line) => {
    expect(diagnostics(spec(lookup))).toContainEqual([code, path, line]);
  });

  it('check refuses a query whose key is not the key of the table or index it queries (DF404)', async () => {
    const plan = compileSpec(loadSpecText(spec('    query: { key: { GSI8PK: "AUTHOR#{{ post.author }}" } }\n    max: 5'), 'spec.yaml'), {
      skipEnv: true,
    });
    const adapter = await createDynamoAdapter({ backend: 'dynamodb', table: TABLE, region: 'us-east-1', endpoint: db.endpoint });
    try {
      await expect(adapter.check(plan)).rejects.toMatchObject({
        code: 'DF404',
        message: expect.stringContaining('lookup `comments` queries by `GSI8PK` as its partition key, but table'),
      });
    } finally {
      await adapter.close();
    }
  });
});
