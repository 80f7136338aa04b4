import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter } from '../../src/adapters/types.js';
import { evaluate } from '../../src/engine/context.js';
import { parseRef } from '../../src/language/refs.js';
import type { Condition } from '../../src/plan/types.js';
import { createMediaTable, mediaItem, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy, throttled } from '../helpers/proxy.js';
import { all, any, equals, exists, isNull, missing, not, notNull, readAll, ref, scanSource, target, videoQuery } from './fixtures.js';

const MEDIA = 'media-read';
const FILTERED = 'filtered';
const VIDEOS = 450;

let db: RunningDynalite;
let adapter: Adapter;

/** createdAt for video i: increasing with i, so newest-first means descending i. */
const createdAt = (i: number): string => new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString();
const videoId = (i: number): string => `v${String(i).padStart(4, '0')}`;

// Attribute variants for the filter table: every combination the engine's semantics tell apart.
const VARIANTS: unknown[] = [undefined, null, '', 'text', 0, 1, { small: 'url' }, { small: '' }, { other: 1 }];
const filterItems: Record<string, unknown>[] = [];

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, MEDIA);
  await createMediaTable(db.endpoint, FILTERED);
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < VIDEOS; i++) items.push(mediaItem(videoId(i), createdAt(i)));
  // Items the GSI query must not return: images on the same partition, jobs off the index.
  for (let i = 0; i < 30; i++) {
    items.push({
      ...mediaItem(`i${i}`, createdAt(i)),
      type: 'image',
      GSI8SK: `image#${createdAt(i)}#i${i}`,
    });
    items.push({ PK: `I2VJOB#j${i}`, SK: 'METADATA', jobId: `j${i}`, mediaId: `v${i}` });
  }
  await seedItems(db.endpoint, MEDIA, items);

  let n = 0;
  for (const a of VARIANTS) {
    for (const b of VARIANTS) {
      const item: Record<string, unknown> = { PK: `F#${n}`, SK: 'METADATA', n };
      if (a !== undefined) item.status = a;
      if (b !== undefined) item.thumbnailUrls = b;
      // Names that need placeholders: a dot, a dash, reserved words.
      if (n % 3 === 0) item['a.b'] = n % 2 === 0 ? 'even' : 'odd';
      if (n % 4 === 1) item['x-y'] = 1;
      if (n % 5 === 2) item.name = 'named';
      // A list whose first element may be `featured`, and maps whose key is the digit 0.
      if (n % 6 === 0) item.tags = ['featured', 'other'];
      if (n % 6 === 1) item.tags = ['other', 'featured'];
      if (n % 6 === 2) item.tags = { '0': 'featured' };
      filterItems.push(item);
      n++;
    }
  }
  await seedItems(db.endpoint, FILTERED, filterItems);
  adapter = await createDynamoAdapter(target(db.endpoint, MEDIA), { retryBaseMs: 1 });
});

afterAll(async () => {
  await adapter?.close();
  await db?.stop();
});

describe('query through a GSI', () => {
  it('pages newest-first through every video exactly once', async () => {
    const { pages, records } = await readAll(adapter, videoQuery(), { pageSize: 100 });
    // 450 videos: four full pages of 100 and a last one of 50, which ends the query.
    expect(pages.map((p) => p.records.length)).toEqual([100, 100, 100, 100, 50]);
    expect(pages.at(-1)?.cursor).toBeUndefined();
    for (const page of pages.slice(0, -1)) expect(page.cursor).toBeDefined();

    const ids = records.map((r) => r.item.id as string);
    expect(ids.length).toBe(VIDEOS);
    expect(new Set(ids).size).toBe(VIDEOS);
    const sortKeys = records.map((r) => r.item.GSI8SK as string);
    expect(sortKeys).toEqual([...sortKeys].sort().reverse());
    expect(ids[0]).toBe(videoId(VIDEOS - 1));
    // The record key is the table's primary key only, never the index key.
    expect(records[0]?.key).toEqual({ PK: `MEDIA#${videoId(VIDEOS - 1)}`, SK: 'METADATA' });
  });

  it('reads oldest-first when newestFirst is false', async () => {
    const { records } = await readAll(adapter, videoQuery({ newestFirst: false }), { pageSize: 200 });
    expect(records[0]?.item.id).toBe('v0000');
    expect(records.length).toBe(VIDEOS);
  });

  it('resumes from a cursor without repeating or skipping items', async () => {
    const first: string[] = [];
    let cursor: unknown;
    for await (const page of adapter.readPages(videoQuery(), { pageSize: 100 })) {
      first.push(...page.records.map((r) => r.item.id as string));
      cursor = page.cursor;
      if (first.length >= 200) break;
    }
    // The cursor is plain JSON: it survives a journal.
    const saved = JSON.parse(JSON.stringify(cursor));
    const { records } = await readAll(adapter, videoQuery(), { pageSize: 100, cursor: saved });
    const rest = records.map((r) => r.item.id as string);
    expect(first.length + rest.length).toBe(VIDEOS);
    expect(new Set([...first, ...rest]).size).toBe(VIDEOS);
  });

  it('applies sort-key operators', async () => {
    const lo = `video#${createdAt(10)}`;
    const hi = `video#${createdAt(20)}`;
    const between = await readAll(adapter, videoQuery({ sortKey: { name: 'GSI8SK', op: 'between', values: [lo, hi] } }), { pageSize: 100 });
    expect(between.records.length).toBe(10);
    const lt = await readAll(adapter, videoQuery({ sortKey: { name: 'GSI8SK', op: 'lt', values: [lo] } }), { pageSize: 100 });
    // Images sort before "video#", so `lt` also returns them.
    expect(lt.records.filter((r) => r.item.type === 'video').length).toBe(10);
  });

  it('does not send ConsistentRead to a GSI, and sends it to the table', async () => {
    const gsi = await readAll(adapter, videoQuery({ consistentRead: true }), { pageSize: 500 });
    expect(gsi.records.length).toBe(VIDEOS);
    const table = await readAll(
      adapter,
      {
        kind: 'query',
        as: 'media',
        partitionKey: { name: 'PK', value: 'MEDIA#v0001' },
        newestFirst: false,
        consistentRead: true,
      },
      { pageSize: 10 },
    );
    expect(table.records.map((r) => r.item.id)).toEqual(['v0001']);
  });
});

describe('filters', () => {
  let filtered: Adapter;
  beforeAll(async () => {
    filtered = await createDynamoAdapter(target(db.endpoint, FILTERED));
  });
  afterAll(async () => {
    await filtered?.close();
  });

  // The expected selection of each filter is a predicate written here from the documented
  // semantics (docs/spec.md, Conditions: absent, null and "" are missing), not the engine's evaluator.
  type Probe = (item: Record<string, unknown>) => boolean;
  const present = (v: unknown) => v !== undefined && v !== null && v !== '';
  const small = (item: Record<string, unknown>) => {
    const t = item.thumbnailUrls;
    return t !== null && typeof t === 'object' ? (t as Record<string, unknown>).small : undefined;
  };
  const cases: [string, Condition, Probe][] = [
    ['exists', exists(ref('status')), (i) => present(i.status)],
    ['missing', missing(ref('status')), (i) => !present(i.status)],
    ['isNull', isNull(ref('status')), (i) => i.status === undefined || i.status === null],
    ['notNull', notNull(ref('status')), (i) => i.status !== undefined && i.status !== null],
    ['nested exists', exists(ref('thumbnailUrls', 'small')), (i) => present(small(i))],
    ['nested missing', missing(ref('thumbnailUrls', 'small')), (i) => !present(small(i))],
    ['equals string', equals([ref('status'), 'text']), (i) => i.status === 'text'],
    ['equals number', equals([ref('status'), 1]), (i) => i.status === 1],
    ['equals null', equals([ref('status'), null]), (i) => i.status === undefined || i.status === null],
    ['dotted and dashed names', all(equals([ref('a.b'), 'even']), exists(ref('x-y'))), (i) => i['a.b'] === 'even' && present(i['x-y'])],
    ['reserved word name', exists(ref('name')), (i) => present(i.name)],
    [
      'all/any/not',
      all(
        missing(ref('thumbnailUrls', 'small')),
        any(equals([ref('status'), 'text']), exists(ref('a.b'))),
        not(equals([ref('status'), 0])),
      ),
      (i) => !present(small(i)) && (i.status === 'text' || present(i['a.b'])) && i.status !== 0,
    ],
    ['two refs', exists(ref('status'), ref('thumbnailUrls')), (i) => present(i.status) && present(i.thumbnailUrls)],
    ['empty any (never)', any(), () => false],
    ['empty all (always)', all(), () => true],
    // A list position (`tags[0]`, `tags.0`) reads the list's element; `["0"]` reads the map key "0".
    ['list position [0]', equals([parseRef('tags[0]'), 'featured']), (i) => Array.isArray(i.tags) && i.tags[0] === 'featured'],
    ['list position .0', equals([parseRef('tags.0'), 'featured']), (i) => Array.isArray(i.tags) && i.tags[0] === 'featured'],
    [
      'map key "0"',
      equals([parseRef('tags["0"]'), 'featured']),
      (i) =>
        i.tags !== null && typeof i.tags === 'object' && !Array.isArray(i.tags) && (i.tags as Record<string, unknown>)['0'] === 'featured',
    ],
  ];

  // dynalite reads `tags[0]` on a map as its key "0"; DynamoDB dereferences list elements only
  // (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.Attributes.html).
  // Items whose tags are such a map are left out of the list-position cases.
  const comparable = (name: string) => (item: Record<string, unknown>) =>
    !name.startsWith('list position') || item.tags === undefined || Array.isArray(item.tags);

  it.each(cases)('%s selects exactly the items the documented semantics select', async (name, condition, probe) => {
    const expected = filterItems
      .filter(comparable(name))
      .filter(probe)
      .map((item) => item.n)
      .sort((x, y) => Number(x) - Number(y));
    const { records } = await readAll(filtered, scanSource({ filter: condition }), { pageSize: 1000 });
    const got = records
      .filter((r) => comparable(name)(r.item))
      .map((r) => r.item.n)
      .sort((x, y) => Number(x) - Number(y));
    expect(got).toEqual(expected);
    // The same condition in a skip rule (the engine) selects the same items.
    const byEngine = filterItems
      .filter(comparable(name))
      .filter((item) => evaluate(condition, new Map(Object.entries(item))))
      .map((item) => item.n);
    expect(byEngine.sort((x, y) => Number(x) - Number(y))).toEqual(expected);
  });

  it('keeps paging through pages the filter empties', async () => {
    const { pages, records } = await readAll(filtered, scanSource({ filter: equals([ref('status'), 'no such value']) }), { pageSize: 10 });
    expect(records.length).toBe(0);
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(filterItems.length / 10));
    expect(pages.at(-1)?.cursor).toBeUndefined();
  });
});

describe('parallel scan', () => {
  const tableItems = VIDEOS + 60;

  it('reads every item exactly once with segments: 4 in one process', async () => {
    const { pages, records } = await readAll(adapter, scanSource({ segments: 4 }), { pageSize: 50 });
    const keys = records.map((r) => r.item.PK as string);
    expect(keys.length).toBe(tableItems);
    expect(new Set(keys).size).toBe(tableItems);
    expect(new Set(pages.map((p) => p.segment))).toEqual(new Set([0, 1, 2, 3]));
    expect(pages.at(-1)?.cursor).toBeUndefined();
  });

  it('serves more segments than it keeps in flight, each exactly once, and prints no listener warning', async () => {
    // 16 requests in flight on one abort signal: Node warns from 11 listeners unless told the bound.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    let read: Awaited<ReturnType<typeof readAll>>;
    try {
      read = await readAll(adapter, scanSource({ segments: 40 }), { pageSize: 25 });
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
    const { pages, records } = read;
    const keys = records.map((r) => r.item.PK as string);
    expect(keys.length).toBe(tableItems);
    expect(new Set(keys).size).toBe(tableItems);
    expect(new Set(pages.map((p) => p.segment)).size).toBe(40);
  });

  it('splits the table across 3 processes with --segment i --total-segments 3', async () => {
    const adapters = await Promise.all([0, 1, 2].map(() => createDynamoAdapter(target(db.endpoint, MEDIA))));
    try {
      const parts = await Promise.all(
        adapters.map((a, index) => readAll(a, scanSource({ segments: 8 }), { pageSize: 60, segment: { index, total: 3 } })),
      );
      for (const [index, part] of parts.entries()) {
        expect(part.pages.every((p) => p.segment === index)).toBe(true);
      }
      const keys = parts.flatMap((p) => p.records.map((r) => r.item.PK as string));
      expect(keys.length).toBe(tableItems);
      expect(new Set(keys).size).toBe(tableItems);
    } finally {
      await Promise.all(adapters.map((a) => a.close()));
    }
  });

  it('resumes every segment from its own position', async () => {
    const seen: string[] = [];
    let cursor: unknown;
    let pagesRead = 0;
    for await (const page of adapter.readPages(scanSource({ segments: 4 }), { pageSize: 40 })) {
      seen.push(...page.records.map((r) => r.item.PK as string));
      cursor = page.cursor;
      if (++pagesRead === 5) break;
    }
    const saved = JSON.parse(JSON.stringify(cursor)) as { totalSegments: number; segments: unknown[] };
    expect(saved.totalSegments).toBe(4);
    expect(saved.segments.length).toBe(4);
    const { records } = await readAll(adapter, scanSource({ segments: 4 }), { pageSize: 40, cursor: saved });
    const all = [...seen, ...records.map((r) => r.item.PK as string)];
    expect(all.length).toBe(tableItems);
    expect(new Set(all).size).toBe(tableItems);
  });

  it('rejects a cursor made with a different number of segments', async () => {
    const pages = adapter.readPages(scanSource({ segments: 2 }), {
      pageSize: 10,
      cursor: { totalSegments: 4, segments: [] },
    });
    await expect(readAllPages(pages)).rejects.toMatchObject({ code: 'DF409', category: 'usage' });
  });

  it('stops quietly when the signal aborts', async () => {
    const controller = new AbortController();
    let count = 0;
    for await (const page of adapter.readPages(scanSource({ segments: 2 }), {
      pageSize: 20,
      signal: controller.signal,
    })) {
      count += page.records.length;
      controller.abort();
    }
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(tableItems);
  });
});

describe('throttled reads', () => {
  let proxy: CountingProxy;
  let throttledAdapter: Adapter;
  beforeAll(async () => {
    // The first three Query requests are throttled; the SDK gives up after one retry.
    proxy = await startCountingProxy(db.endpoint, {
      fault: (r) => (r.operation === 'Query' && r.nth <= 3 ? { respond: throttled() } : undefined),
    });
    throttledAdapter = await createDynamoAdapter(target(proxy.endpoint, MEDIA), {
      maxAttempts: 1,
      retryBaseMs: 1,
    });
  });
  afterAll(async () => {
    await throttledAdapter?.close();
    await proxy?.stop();
  });

  it('backs off and retries the same page until it is served', async () => {
    const { records } = await readAll(throttledAdapter, videoQuery(), { pageSize: 500 });
    expect(records.length).toBe(VIDEOS);
    expect(proxy.counts().Query).toBe(4);
    expect(throttledAdapter.stats().Query).toBe(4);
  });

  it('gives up with a connection error when throttling does not stop', async () => {
    const always = await startCountingProxy(db.endpoint, {
      fault: (r) => (r.operation === 'Query' ? { respond: throttled() } : undefined),
    });
    const a = await createDynamoAdapter(target(always.endpoint, MEDIA), {
      maxAttempts: 1,
      retryBaseMs: 1,
      readRetries: 3,
    });
    try {
      await expect(readAll(a, videoQuery(), { pageSize: 100 })).rejects.toMatchObject({
        category: 'connection',
        code: 'DF412',
      });
      expect(always.counts().Query).toBe(4);
    } finally {
      await a.close();
      await always.stop();
    }
  });
});

async function readAllPages(pages: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of pages) {
    // drain
  }
}
