/**
 * The DynamoDB adapter's guarded writes, run in the test process against the in-process server
 * (dynalite): requests that cannot be written fail alone before anything is sent; a guard on a
 * before-image tells a missing attribute from a NULL one; a write resent after its outcome was
 * lost is claimed as applied only when the item holds every value it wrote; a failed guard is
 * resolved by a consistent re-read. Throttling comes from a loopback proxy in front of dynalite.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, FieldWrite, Item, WriteRequest } from '../../src/adapters/types.js';
import { createMediaTable, getRawItem, type RunningDynalite, rawClient, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, type FaultAction, type ProxiedRequest, startCountingProxy, throttled } from '../helpers/proxy.js';
import { target } from './fixtures.js';

const TABLE = 'write-guards';

let db: RunningDynalite;
let proxy: CountingProxy;
let adapter: Adapter;
/** How the proxy answers the current test's requests (undefined: forwarded to dynalite). */
let answer: ((r: ProxiedRequest) => FaultAction | undefined) | undefined;

const rawKey = (id: string): Record<string, AttributeValue> => ({ PK: { S: `USER#${id}` }, SK: { S: 'PROFILE' } });
const key = (id: string): Item => ({ PK: `USER#${id}`, SK: 'PROFILE' });
const raw = (id: string) => getRawItem(db.endpoint, TABLE, rawKey(id));
const seed = (id: string, extra: Record<string, AttributeValue>) => seedRawItems(db.endpoint, TABLE, [{ ...rawKey(id), ...extra }]);
const once = { concurrency: 1 };
/** Requests of one operation the proxy saw since the last `proxy.reset()`. */
const sent = (operation: string): number => proxy.counts()[operation] ?? 0;
/** The fields of a create: the key attributes and `name`. */
const created = (id: string, name: string): FieldWrite[] => [
  { name: 'PK', value: `USER#${id}`, guard: 'absent' },
  { name: 'SK', value: 'PROFILE', guard: 'absent' },
  { name: 'name', value: name, guard: 'absent' },
];
/** A delete's fields: every attribute of the item as read, guarded unchanged. */
const wholeRecord = (item: Item): FieldWrite[] =>
  Object.entries(item).map(([name, before]) => ({ name, value: undefined, guard: 'unchanged' as const, before }));

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  proxy = await startCountingProxy(db.endpoint, { fault: (r) => answer?.(r) });
  adapter = await createDynamoAdapter(target(proxy.endpoint, TABLE), { maxAttempts: 1, retryBaseMs: 1 });
  // The table's key schema is read once per adapter, before the tests count requests.
  expect(await adapter.lookup([{ key: key('nobody'), consistentRead: true }])).toEqual([undefined]);
});

afterEach(() => {
  answer = undefined;
  proxy.reset();
});

afterAll(async () => {
  await adapter?.close();
  await proxy?.stop();
  await db?.stop();
});

describe('a request that cannot be written fails alone, before anything is sent', () => {
  it('an update with no fields or an empty key, a delete or create with an empty key: write_rejected saying which; the others are written', async () => {
    await seed('untouched', { name: { S: 'as seeded' } });
    await seed('written', { name: { S: 'as seeded' } });
    proxy.reset();
    const results = await adapter.write(
      [
        { key: key('untouched'), fields: [] },
        { key: {}, fields: [{ name: 'name', value: 'x', guard: 'none' }] },
        { action: 'delete', key: {}, fields: [] },
        { action: 'create', key: {}, fields: [{ name: 'name', value: 'x', guard: 'absent' }] },
        { key: key('written'), fields: [{ name: 'name', value: 'new', guard: 'none' }] },
      ],
      once,
    );
    expect(results).toEqual([
      { status: 'failed', reason: 'write_rejected', message: 'nothing to write' },
      { status: 'failed', reason: 'write_rejected', message: 'the update key is empty' },
      { status: 'failed', reason: 'write_rejected', message: 'the key is empty' },
      { status: 'failed', reason: 'write_rejected', message: 'the key is empty' },
      { status: 'applied' },
    ]);
    expect([sent('UpdateItem'), sent('DeleteItem'), sent('PutItem')]).toEqual([1, 0, 0]);
    expect((await raw('untouched'))?.name).toEqual({ S: 'as seeded' });
    expect((await raw('written'))?.name).toEqual({ S: 'new' });
  });

  it('a create with a value DynamoDB cannot hold (an empty set, a number of 39 digits): its reason, and no item', async () => {
    const results = await adapter.write(
      [
        {
          action: 'create',
          key: key('empty-set'),
          fields: [...created('empty-set', 'e'), { name: 'tags', value: new Set(), guard: 'absent' }],
        },
        {
          action: 'create',
          key: key('long-number'),
          fields: [
            ...created('long-number', 'n'),
            { name: 'n', value: { deep: [1, 2, 123456789012345678901234567890123456789n] }, guard: 'absent' },
          ],
        },
      ],
      once,
    );
    expect(results).toEqual([
      { status: 'failed', reason: 'value_invalid', message: 'tags: an empty set; DynamoDB sets cannot be empty' },
      {
        status: 'failed',
        reason: 'number_out_of_range',
        message: 'n: 123456789012345678901234567890123456789 has 39 significant digits; DynamoDB keeps at most 38',
      },
    ]);
    expect(sent('PutItem')).toBe(0);
    expect(await raw('empty-set')).toBeUndefined();
    expect(await raw('long-number')).toBeUndefined();
  });

  it('a delete or create whose sort key is over 1024 bytes: key_too_large; nothing sent', async () => {
    const longKey = { PK: 'USER#long', SK: 's'.repeat(1025) };
    const results = await adapter.write(
      [
        { action: 'delete', key: longKey, fields: [{ name: 'name', value: undefined, guard: 'unchanged', before: 'x' }] },
        { action: 'create', key: longKey, fields: [{ name: 'name', value: 'x', guard: 'absent' }] },
      ],
      once,
    );
    const tooLarge = {
      status: 'failed',
      reason: 'key_too_large',
      message: 'key attribute `SK` is 1025 bytes; DynamoDB allows at most 1024 for a sort key',
    };
    expect(results).toEqual([tooLarge, tooLarge]);
    expect([sent('DeleteItem'), sent('PutItem')]).toEqual([0, 0]);
  });
});

describe('a guard on the before-image tells a missing attribute from a NULL one', () => {
  // What undo sends to restore a field: the value it had, guarded on what the run wrote.
  const restore = (id: string, before: unknown): WriteRequest => ({
    key: key(id),
    fields: [{ name: 'note', value: 'restored', guard: 'unchanged', before }],
  });

  it('recorded as missing: applied while it is still missing; a conflict once it holds NULL, which stays', async () => {
    await seed('still-missing', {});
    await seed('now-null', { note: { NULL: true } });
    expect(await adapter.write([restore('still-missing', undefined), restore('now-null', undefined)], once)).toEqual([
      { status: 'applied' },
      { status: 'conflict' },
    ]);
    expect((await raw('still-missing'))?.note).toEqual({ S: 'restored' });
    expect((await raw('now-null'))?.note).toEqual({ NULL: true });
  });

  it('recorded as NULL: applied while it is still NULL; a conflict once it is missing, which it stays', async () => {
    await seed('still-null', { note: { NULL: true } });
    await seed('now-missing', {});
    expect(await adapter.write([restore('still-null', null), restore('now-missing', null)], once)).toEqual([
      { status: 'applied' },
      { status: 'conflict' },
    ]);
    expect((await raw('still-null'))?.note).toEqual({ S: 'restored' });
    expect((await raw('now-missing'))?.note).toBeUndefined();
  });

  it('a fill with a before-image of “missing” is refused by a NULL, which a fill without one overwrites', async () => {
    await seed('null-a', { note: { NULL: true } });
    await seed('null-b', { note: { NULL: true } });
    const results = await adapter.write(
      [
        { key: key('null-a'), fields: [{ name: 'note', value: 'filled', guard: 'absent', before: undefined }] },
        { key: key('null-b'), fields: [{ name: 'note', value: 'filled', guard: 'absent' }] },
      ],
      once,
    );
    expect(results).toEqual([{ status: 'conflict' }, { status: 'applied' }]);
    expect((await raw('null-a'))?.note).toEqual({ NULL: true });
    expect((await raw('null-b'))?.note).toEqual({ S: 'filled' });
  });

  it('a delete whose before-image has an attribute missing is a conflict once the item gained it; the item stays', async () => {
    await seed('gained', { name: { S: 'g' }, extra: { S: 'added since' } });
    await seed('not-gained', { name: { S: 'n' } });
    const fields = (id: string, name: string): FieldWrite[] => [
      ...wholeRecord({ ...key(id), name }),
      { name: 'extra', value: undefined, guard: 'unchanged', before: undefined },
    ];
    const results = await adapter.write(
      [
        { action: 'delete', key: key('gained'), fields: fields('gained', 'g') },
        { action: 'delete', key: key('not-gained'), fields: fields('not-gained', 'n') },
      ],
      once,
    );
    expect(results).toEqual([{ status: 'conflict' }, { status: 'applied' }]);
    expect(await raw('gained')).toEqual({ ...rawKey('gained'), name: { S: 'g' }, extra: { S: 'added since' } });
    expect(await raw('not-gained')).toBeUndefined();
  });
});

describe('a write resent after its outcome was lost', () => {
  const resent = { concurrency: 1, resend: true };

  it('an update: applied when the item holds every value it writes; a conflict when one differs, which stays', async () => {
    await seed('landed', { url: { S: 'ours' }, title: { S: 'T' } });
    await seed('half', { url: { S: 'ours' }, title: { S: 'theirs' } });
    const fields: FieldWrite[] = [
      { name: 'url', value: 'ours', guard: 'absent' },
      { name: 'title', value: 'T', guard: 'absent' },
    ];
    expect(
      await adapter.write(
        [
          { key: key('landed'), fields },
          { key: key('half'), fields },
        ],
        resent,
      ),
    ).toEqual([{ status: 'applied' }, { status: 'conflict' }]);
    expect((await raw('half'))?.title).toEqual({ S: 'theirs' });
  });

  it('a create: applied when the item holds exactly what it creates; a conflict when one field differs, or when it was sent once', async () => {
    await seed('made', { name: { S: 'ours' } });
    await seed('made-by-other', { name: { S: 'theirs' } });
    await seed('made-before', { name: { S: 'ours' } });
    expect(
      await adapter.write(
        [
          { action: 'create', key: key('made'), fields: created('made', 'ours') },
          { action: 'create', key: key('made-by-other'), fields: created('made-by-other', 'ours') },
        ],
        resent,
      ),
    ).toEqual([{ status: 'applied' }, { status: 'conflict' }]);
    // Sent once, an identical item was made by someone else (or an earlier run): not ours to claim.
    expect(await adapter.write([{ action: 'create', key: key('made-before'), fields: created('made-before', 'ours') }], once)).toEqual([
      { status: 'conflict' },
    ]);
    expect((await raw('made-by-other'))?.name).toEqual({ S: 'theirs' });
  });

  it('a create refused by an item that is deleted before the re-read: a conflict, not claimed as ours', async () => {
    await seed('fleeting', { name: { S: 'ours' } });
    answer = (r) =>
      r.operation === 'GetItem'
        ? {
            beforeForward: async () => {
              const client = rawClient(db.endpoint);
              const { DeleteItemCommand } = await import('@aws-sdk/client-dynamodb');
              await client.send(new DeleteItemCommand({ TableName: TABLE, Key: rawKey('fleeting') }));
              client.destroy();
            },
          }
        : undefined;
    expect(await adapter.write([{ action: 'create', key: key('fleeting'), fields: created('fleeting', 'ours') }], resent)).toEqual([
      { status: 'conflict' },
    ]);
    expect(await raw('fleeting')).toBeUndefined();
  });
});

describe('a failed guard is resolved by a consistent re-read', () => {
  it('an update, a delete and a create refused by their guards each re-read the item with ConsistentRead', async () => {
    await seed('reread', { name: { S: 'theirs' } });
    const reads: unknown[] = [];
    answer = (r) => {
      if (r.operation === 'GetItem') reads.push(JSON.parse(r.body).ConsistentRead);
      return undefined;
    };
    const results = await adapter.write(
      [
        { key: key('reread'), fields: [{ name: 'name', value: 'ours', guard: 'unchanged', before: 'as read' }] },
        { action: 'delete', key: key('reread'), fields: wholeRecord({ ...key('reread'), name: 'as read' }) },
        { action: 'create', key: key('reread'), fields: created('reread', 'ours') },
      ],
      once,
    );
    // An eventually consistent read could still show the item as it was before a write landed.
    expect(results).toEqual([{ status: 'conflict' }, { status: 'conflict' }, { status: 'conflict' }]);
    expect(reads).toEqual([true, true, true]);
    expect((await raw('reread'))?.name).toEqual({ S: 'theirs' });
  });
});

describe('a delete or create DynamoDB could not take now is handed back for retry, never taken for a conflict', () => {
  it('throttled delete and create: `retry`; the item is as it was', async () => {
    await seed('busy', { name: { S: 'b' } });
    answer = (r) => (r.operation === 'DeleteItem' || r.operation === 'PutItem' ? { respond: throttled() } : undefined);
    const results = await adapter.write(
      [
        { action: 'delete', key: key('busy'), fields: wholeRecord({ ...key('busy'), name: 'b' }) },
        { action: 'create', key: key('busy-new'), fields: created('busy-new', 'n') },
      ],
      once,
    );
    const retry = { status: 'retry', message: 'The level of configured provisioned throughput for the table was exceeded.' };
    expect(results).toEqual([retry, retry]);
    expect(await raw('busy')).toEqual({ ...rawKey('busy'), name: { S: 'b' } });
    expect(await raw('busy-new')).toBeUndefined();
  });

  it('a delete refused by its guard whose re-read is throttled: `retry`; the item is as it was', async () => {
    await seed('busy-read', { name: { S: 'changed' } });
    answer = (r) => (r.operation === 'GetItem' ? { respond: throttled() } : undefined);
    const [result] = await adapter.write(
      [{ action: 'delete', key: key('busy-read'), fields: wholeRecord({ ...key('busy-read'), name: 'as read' }) }],
      once,
    );
    expect(result).toEqual({ status: 'retry', message: 'The level of configured provisioned throughput for the table was exceeded.' });
    expect(await raw('busy-read')).toEqual({ ...rawKey('busy-read'), name: { S: 'changed' } });
  });
});
