/**
 * What the engine reads, in the test process: a limit reads no page past it, a lookup of several
 * records needs a backend that has them, the record a write replaces is read strongly consistent,
 * and the pages of one segment of a parallel scan say which segment they are. Real SQLite files
 * and dynalite behind a counting proxy; every expected value is written here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { EngineEvent, RecordEvent } from '../../src/engine/events.js';
import { type CheckpointSink, type RunOptions, runFix } from '../../src/engine/run.js';
import { DatafixError } from '../../src/errors.js';
import { createMediaTable, mediaItem, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { scanAll } from '../reliability/support.js';
import { compileYaml, createDb, query, runYaml, sqliteTarget } from '../sqlite/fixtures.js';

const tmp = useTempDirs();

describe('SQLite reads', () => {
  it('a limit reads only the pages it needs, and handles exactly that many records', async () => {
    const db = tmp().file('limit.db');
    createDb(
      db,
      `CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, NULL)`).join(',')}`,
    );
    const pages: number[] = [];
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, pageSize: 2 }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
      { limit: 3, onEvent: (e) => e.type === 'page' && pages.push(e.records) },
    );
    expect(run.summary).toMatchObject({ total: 3, updated: 3 });
    expect(pages).toEqual([2, 1]);
    expect(run.requests.select).toBe(2);
    expect(query(db, 'SELECT id FROM items WHERE note IS NOT NULL ORDER BY id').map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('a resumed run whose cursor is past the last page (null) reads nothing and writes nothing', async () => {
    const db = tmp().file('done.db');
    createDb(db, 'CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, NULL)');
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
      { cursor: null },
    );
    expect(run.summary).toMatchObject({ total: 0, updated: 0, skipped: 0, failed: 0 });
    expect(run.requests.select ?? 0).toBe(0);
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 1, note: null },
      { id: 2, note: null },
    ]);
  });

  it('a lookup of several records on a backend without them is DF790, naming the lookup; nothing is written', async () => {
    const db = tmp().file('posts.db');
    createDb(
      db,
      'CREATE TABLE posts (id INTEGER PRIMARY KEY, n TEXT); CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER); INSERT INTO posts VALUES (1, NULL); INSERT INTO comments VALUES (10, 1)',
    );
    const spec =
      `name: t\n${sqliteTarget(db)}source: { as: post, table: posts }\n` +
      'lookups:\n  comments:\n    table: comments\n    where: { equals: { post_id: "{{ post.id }}" } }\n    max: 5\n' +
      'update:\n  key: { id: "{{ post.id }}" }\n  set: { n: "{{ comments[0].id }}" }\n';
    const err = await runYaml(spec, { wrap: (a) => ({ ...a, readPages: a.readPages.bind(a), lookupMany: undefined }) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatafixError);
    expect(err).toMatchObject({
      code: 'DF790',
      // A mistake in the spec for this backend: exit 2, no stack.
      category: 'config',
      message: 'the sqlite backend cannot look up several records; lookup `comments` needs it',
    });
    expect(query(db, 'SELECT n FROM posts')).toEqual([{ n: null }]);
  });
});

describe('DynamoDB reads', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  const bodies: { operation: string; body: Record<string, unknown> }[] = [];
  const slowScans = { table: '', ms: 0, seen: 0 };

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint, {
      fault: (r) => {
        const body = JSON.parse(r.body) as Record<string, unknown>;
        bodies.push({ operation: r.operation, body });
        // Every Scan of `slowScans.table` after its first waits `slowScans.ms` before it is answered.
        if (r.operation !== 'Scan' || body.TableName !== slowScans.table || slowScans.seen++ === 0) return undefined;
        return { beforeForward: () => new Promise((resolve) => setTimeout(resolve, slowScans.ms)) };
      },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const spec = (table: string, body: string) =>
    `name: t\ntarget: { dynamodb: { table: ${table}, region: us-east-1, endpoint: "${proxy.endpoint}" } }\n${body}`;

  /** Creates the media table `name` holding `items` (dynalite, not through the proxy). */
  async function mediaTable(name: string, items: readonly Record<string, unknown>[]): Promise<string> {
    await createMediaTable(dynamo.endpoint, name);
    await seedItems(dynamo.endpoint, name, items);
    return name;
  }

  async function run(yaml: string, onEvent?: (e: EngineEvent) => void, options: Partial<RunOptions> = {}) {
    const plan = compileYaml(yaml);
    if (plan.target.backend !== 'dynamodb') throw new Error('a DynamoDB spec');
    const adapter = await createDynamoAdapter(plan.target, { retryBaseMs: 1 });
    try {
      await adapter.check(plan);
      return await runFix(plan, adapter, { dryRun: false, ...options, ...(onEvent ? { onEvent } : {}) });
    } finally {
      await adapter.close();
    }
  }

  it('a lookup of several records whose sort-key value renders missing matches nothing, without a query', async () => {
    const table = await mediaTable('media-notes', [
      mediaItem('a', '2024-01-01T00:00:00Z', { prefix: 'NOTE#' }),
      { PK: 'MEDIA#a', SK: 'NOTE#1', text: 'first of a' },
      mediaItem('b', '2024-01-01T00:00:00Z'),
      { PK: 'MEDIA#b', SK: 'NOTE#1', text: 'first of b' },
    ]);
    bodies.length = 0;
    const summary = await run(
      spec(
        table,
        'source: { as: media, scan: { filter: { exists: id } } }\n' +
          'lookups:\n  notes:\n    query: { key: { PK: "MEDIA#{{ media.id }}", SK: { beginsWith: "{{ media.prefix }}" } } }\n    max: 5\n' +
          'update:\n  key: { PK: "MEDIA#{{ media.id }}", SK: METADATA }\n  set: { firstNote: "{{ notes[0].text }}" }\n',
      ),
    );
    // b has no prefix: its notes are none, so it has nothing to write.
    expect(summary).toMatchObject({ total: 2, updated: 1, skipped: 1, failed: 0, reasons: { no_change: 1 } });
    expect(bodies.filter((b) => b.operation === 'Query')).toHaveLength(1);
    const items = await scanAll(dynamo.endpoint, table);
    expect(items.filter((i) => i.firstNote !== undefined).map((i) => [i.PK, i.firstNote])).toEqual([['MEDIA#a', 'first of a']]);
  });

  it('the record a write replaces, when it is not the source record, is read strongly consistent; the first source record naming it has it', async () => {
    const table = await mediaTable('media-fetch', [
      mediaItem('a', '2024-01-01T00:00:00Z', { copyOf: 'b' }),
      mediaItem('b', '2024-01-01T00:00:00Z'),
      mediaItem('c', '2024-01-01T00:00:00Z', { copyOf: 'd' }),
      mediaItem('d', '2024-01-01T00:00:00Z'),
      mediaItem('e', '2024-01-01T00:00:00Z', { copyOf: 'b' }),
    ]);
    bodies.length = 0;
    const updated: unknown[] = [];
    const summary = await run(
      spec(
        table,
        'source: { as: media, scan: { filter: { exists: copyOf } } }\n' +
          'update:\n  key: { PK: "MEDIA#{{ media.copyOf }}", SK: METADATA }\n  set: { copiedFrom: "{{ media.id }}" }\n',
      ),
      (e) => e.type === 'record' && e.outcome === 'updated' && updated.push(e.key.PK),
    );
    expect(summary).toMatchObject({ total: 3, updated: 2, skipped: 1, reasons: { duplicate_target: 1 } });
    const reads = bodies.filter((b) => b.operation === 'BatchGetItem' || b.operation === 'GetItem');
    expect(reads).toHaveLength(1);
    const asked = reads[0]?.body as { RequestItems?: Record<string, { ConsistentRead?: boolean }>; ConsistentRead?: boolean };
    expect(asked.RequestItems?.[table]?.ConsistentRead ?? asked.ConsistentRead).toBe(true);
    // a and e both name b: whichever the scan returned first wrote it, the other is a duplicate.
    const items = new Map((await scanAll(dynamo.endpoint, table)).map((i) => [i.id, i.copiedFrom]));
    const bWriter = updated.includes('MEDIA#a') ? 'a' : 'e';
    expect(updated.filter((k) => k === 'MEDIA#a' || k === 'MEDIA#e')).toHaveLength(1);
    expect(Object.fromEntries(items)).toEqual({ a: undefined, b: bWriter, c: undefined, d: 'c', e: undefined });
  });

  it('the pages of a parallel scan name their segment', async () => {
    const table = await mediaTable(
      'media-segments',
      ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => mediaItem(id, '2024-01-01T00:00:00Z')),
    );
    const segments = new Set<unknown>();
    const summary = await run(
      spec(
        table,
        'source: { as: media, scan: { segments: 2 } }\nupdate:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { seen: yes }\n',
      ),
      (e) => e.type === 'page' && segments.add(e.segment),
    );
    expect(summary).toMatchObject({ total: 6, updated: 6 });
    expect([...segments].sort()).toEqual([0, 1]);
  });

  it('an attribute named like a property every object has (toString, valueOf) is absent where the item lacks it', async () => {
    const table = await mediaTable('media-proto-names', [mediaItem('a', '2024-01-01T00:00:00Z'), mediaItem('b', '2024-01-01T00:00:00Z')]);
    const filled = await run(
      spec(
        table,
        'source: { as: media, scan: {} }\n' +
          'update:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { toString: "{{ media.id }}" }\n  touch: { valueOf: "{{ now }}" }\n',
      ),
    );
    expect(filled).toMatchObject({ total: 2, updated: 2, failed: 0 });
    const items = await scanAll(dynamo.endpoint, table);
    expect(items.map((i) => [i.id, Object.hasOwn(i, 'toString') ? i.toString : 'absent', typeof i.valueOf]).sort()).toEqual([
      ['a', 'a', 'string'],
      ['b', 'b', 'string'],
    ]);
    // Removing an attribute the items lack changes nothing.
    const removed = await run(
      spec(
        table,
        'source: { as: media, scan: {} }\nupdate:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  remove: [hasOwnProperty]\n',
      ),
    );
    expect(removed).toMatchObject({ total: 2, updated: 0, skipped: 2, reasons: { no_change: 2 } });
  });

  it('a value nesting deeper than DynamoDB allows fails its record with value_too_deep, naming the field; an update and a create alike', async () => {
    const deep = `${'['.repeat(33)}1${']'.repeat(33)}`;
    const table = await mediaTable('media-too-deep', [
      mediaItem('a', '2024-01-01T00:00:00Z', { raw: `{"v":${deep}}` }),
      mediaItem('b', '2024-01-01T00:00:00Z', { raw: '{"v":[[1]]}' }),
    ]);
    const extract = 'extract:\n  v: { from: media.raw, parse: json, path: $.v }\n';
    for (const write of [
      'update:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { nested: "{{ v }}" }\n',
      'create:\n  key: { PK: "COPY#{{ media.id }}", SK: METADATA }\n  set: { nested: "{{ v }}" }\n',
    ]) {
      const failures: unknown[] = [];
      const summary = await run(spec(table, `source: { as: media, scan: { filter: { exists: raw } } }\n${extract}${write}`), (e) => {
        if (e.type === 'record' && e.outcome === 'failed') failures.push({ key: e.key, reason: e.reason, message: e.message });
      });
      expect(summary).toMatchObject({ total: 2, updated: 1, failed: 1, reasons: { value_too_deep: 1 } });
      expect(failures).toEqual([
        { key: { PK: 'MEDIA#a', SK: 'METADATA' }, reason: 'value_too_deep', message: 'nested: the value nests more than 32 levels deep' },
      ]);
    }
    const items = await scanAll(dynamo.endpoint, table);
    expect(items.filter((i) => i.nested !== undefined).map((i) => [i.PK, i.nested])).toEqual(
      expect.arrayContaining([
        ['MEDIA#b', [[1]]],
        ['COPY#b', [[1]]],
      ]),
    );
    expect(items.filter((i) => i.nested !== undefined)).toHaveLength(2);
  });

  it.each([
    ['a lookup of one record', 'other: { get: { PK: "k{{ media.m }}", SK: METADATA } }', '{{ other.v }}'],
    ['a lookup of several records', 'other:\n    query: { key: { PK: "k{{ media.m }}" } }\n    max: 5', '{{ other[0].v }}'],
  ])(
    '%s whose key puts a map into text fails that record with template_error; the others are looked up and written',
    async (what, lookup, value) => {
      const table = await mediaTable(`media-key-template-${what.length}`, [
        mediaItem('a', '2024-01-01T00:00:00Z', { m: { a: 1 } }),
        mediaItem('b', '2024-01-01T00:00:00Z', { m: 'x' }),
        { PK: 'kx', SK: 'METADATA', v: 'found' },
      ]);
      const records: RecordEvent[] = [];
      const summary = await run(
        spec(
          table,
          'source: { as: media, scan: { filter: { exists: m } } }\n' +
            `lookups:\n  ${lookup}\n` +
            `update:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { note: "${value}" }\n  touch: { touched: "{{ media.gone }}" }\n`,
        ),
        (e) => e.type === 'record' && records.push(e),
      );
      expect(summary).toMatchObject({ total: 2, updated: 1, failed: 1, reasons: { template_error: 1 } });
      const failed = records.find((r) => r.outcome === 'failed');
      expect(failed?.key).toEqual({ PK: 'MEDIA#a', SK: 'METADATA' });
      expect(failed?.reason).toBe('template_error');
      expect(failed?.message).toBe('{{ media.m }} is not text or a number and cannot be placed inside a string');
      // A touch field whose value is missing is left out: only `note` is written.
      expect(records.find((r) => r.outcome === 'updated')?.changes?.map((c) => c.field)).toEqual(['note']);
      const items = await scanAll(dynamo.endpoint, table);
      expect(items.filter((i) => i.note !== undefined || i.touched !== undefined).map((i) => [i.PK, i.note, i.touched])).toEqual([
        ['MEDIA#b', 'found', undefined],
      ]);
    },
  );

  it('a page the filter left empty is still a page: reported and checkpointed, so a resume does not read it again', async () => {
    const table = await mediaTable(
      'media-empty-pages',
      ['a', 'b', 'c', 'd', 'e'].map((id) => mediaItem(id, '2024-01-01T00:00:00Z')),
    );
    bodies.length = 0;
    const pages: number[] = [];
    const saved: number[] = [];
    const checkpoint: CheckpointSink = {
      id: 'fix-1',
      save: (_cursor, progress) => {
        saved.push(progress.pages);
      },
      encode: () => '',
    };
    const summary = await run(
      spec(
        table,
        'source: { as: media, scan: { filter: { equals: { type: image } } } }\nupdate:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { seen: yes }\n',
      ),
      (e) => e.type === 'page' && pages.push(e.records),
      { pageSize: 2, checkpoint },
    );
    // Five items, two a Scan: three Scans, none of whose items is an image.
    const scans = bodies.filter((b) => b.operation === 'Scan' && b.body.TableName === table).length;
    expect(scans).toBe(3);
    expect(summary).toMatchObject({ total: 0, updated: 0 });
    expect(pages).toEqual([0, 0, 0]);
    expect(saved).toEqual([1, 2, 3]);
  });

  it('a stop while the next page is still being read ends the run as interrupted, with the pages before it', async () => {
    const table = await mediaTable(
      'media-stop-reading',
      ['a', 'b', 'c', 'd'].map((id) => mediaItem(id, '2024-01-01T00:00:00Z')),
    );
    Object.assign(slowScans, { table, ms: 400, seen: 0 });
    const stop = new AbortController();
    const events: EngineEvent[] = [];
    const summary = await run(
      spec(
        table,
        'source: { as: media, scan: {} }\nupdate:\n  key: { PK: "{{ media.PK }}", SK: "{{ media.SK }}" }\n  set: { seen: yes }\n',
      ),
      (e) => {
        events.push(e);
        // Sent while the second Scan waits at the proxy: the reader ends quietly on it.
        if (e.type === 'page') setTimeout(() => stop.abort(), 50);
      },
      { pageSize: 2, signal: stop.signal },
    );
    expect(summary).toMatchObject({ total: 2, updated: 2 });
    expect(events.at(-1)).toMatchObject({ type: 'done', interrupted: true });
    expect((await scanAll(dynamo.endpoint, table)).filter((i) => i.seen === 'yes')).toHaveLength(2);
  });
});
