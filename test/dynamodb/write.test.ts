import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, FieldWrite, WriteRequest } from '../../src/adapters/types.js';
import {
  createMediaTable,
  getRawItem,
  mediaItem,
  type RunningDynalite,
  rawClient,
  seedItems,
  seedRawItems,
  startDynalite,
} from '../helpers/dynalite.js';
import { type CountingProxy, internalError, startCountingProxy, throttled } from '../helpers/proxy.js';
import { lookupItems, target } from './fixtures.js';

const TABLE = 'media-write';

let db: RunningDynalite;
let proxy: CountingProxy;
let adapter: Adapter;
/** UpdateItem requests whose body contains this text get their answer replaced by a 500. */
let loseAckFor: string | undefined;

const key = (id: string) => ({ PK: `MEDIA#${id}`, SK: 'METADATA' });
const rawKey = (id: string): Record<string, AttributeValue> => ({
  PK: { S: `MEDIA#${id}` },
  SK: { S: 'METADATA' },
});
const fill = (name: string, value: unknown): FieldWrite => ({ name, value, guard: 'absent' });
const req = (id: string, ...fields: FieldWrite[]): WriteRequest => ({ key: key(id), fields });

async function raw(id: string): Promise<Record<string, AttributeValue> | undefined> {
  return getRawItem(db.endpoint, TABLE, rawKey(id));
}

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  await seedItems(db.endpoint, TABLE, [
    mediaItem('names', '2024-01-01T00:00:00Z'),
    mediaItem('dst', '2024-01-01T00:00:00Z'),
    mediaItem('other', '2024-01-01T00:00:00Z', { thumbnailUrl: 'https://other/1.jpg' }),
    mediaItem('same', '2024-01-01T00:00:00Z', { thumbnailUrl: 'https://ours/1.jpg' }),
    mediaItem('null', '2024-01-01T00:00:00Z', { thumbnailUrl: null }),
    mediaItem('raced', '2024-01-01T00:00:00Z', { thumbnailUrl: 'v1' }),
    mediaItem('touch', '2024-01-01T00:00:00Z'),
    mediaItem('lostack', '2024-01-01T00:00:00Z'),
    mediaItem('throttle', '2024-01-01T00:00:00Z'),
    mediaItem('big', '2024-01-01T00:00:00Z'),
    ...Array.from({ length: 40 }, (_, i) => mediaItem(`c${i}`, '2024-01-01T00:00:00Z')),
  ]);
  await seedRawItems(db.endpoint, TABLE, [
    {
      ...rawKey('src'),
      big: { N: '12345678901234567890.123456789' },
      unsafe: { N: '9007199254740993' },
      small: { N: '42' },
      frac: { N: '0.1' },
      neg: { N: '-7.25' },
      thumbnailUrls: {
        M: {
          small: { S: 'https://cdn/s.jpg' },
          nested: { M: { n: { N: '1.5' }, list: { L: [{ S: 'a' }, { N: '2' }, { NULL: true }, { BOOL: true }] } } },
        },
      },
      list: { L: [{ M: { a: { S: 'x' } } }, { N: '123456789012345678901234567890' }] },
      ss: { SS: ['b', 'a', 'c'] },
      ns: { NS: ['1', '12345678901234567890.5', '3.25'] },
      bs: { BS: [new Uint8Array([0, 1, 2]), new Uint8Array([255, 254])] },
      bin: { B: new Uint8Array([0, 159, 146, 150, 0, 255]) },
      flag: { BOOL: false },
      nothing: { NULL: true },
      empty: { S: '' },
    },
  ]);
  proxy = await startCountingProxy(db.endpoint, {
    fault: (r) => {
      if (r.operation === 'UpdateItem' && r.body.includes('MEDIA#throttle')) {
        return { respond: throttled() };
      }
      if (r.operation === 'UpdateItem' && loseAckFor && r.body.includes(loseAckFor)) {
        loseAckFor = undefined;
        return { afterForward: () => internalError() };
      }
      return undefined;
    },
  });
  adapter = await createDynamoAdapter(target(proxy.endpoint, TABLE), {
    maxAttempts: 2,
    retryBaseMs: 1,
  });
});

afterAll(async () => {
  await adapter?.close();
  await proxy?.stop();
  await db?.stop();
});

/** Sets come back in no promised order; sort them so two items compare by content. */
function normalise(item: Record<string, AttributeValue> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item ?? {})) {
    if (k === 'PK') continue;
    if (v.SS) out[k] = { SS: [...v.SS].sort() };
    else if (v.NS) out[k] = { NS: [...v.NS].sort() };
    else if (v.BS) out[k] = { BS: v.BS.map((b) => Buffer.from(b).toString('base64')).sort() };
    else out[k] = v;
  }
  return out;
}

describe('write', () => {
  it('writes and reads back reserved-word, dotted and dashed attribute names', async () => {
    const results = await adapter.write(
      [req('names', fill('status', 'ready'), fill('name', 'n'), fill('a.b', 1), fill('x-y', 'z'), fill('data', { k: 'v' }))],
      { concurrency: 1 },
    );
    expect(results).toEqual([{ status: 'applied' }]);
    const item = await raw('names');
    expect(item?.status).toEqual({ S: 'ready' });
    expect(item?.name).toEqual({ S: 'n' });
    expect(item?.['a.b']).toEqual({ N: '1' });
    expect(item?.['x-y']).toEqual({ S: 'z' });
    expect(item?.data).toEqual({ M: { k: { S: 'v' } } });
    const [back] = await lookupItems(adapter, [{ key: key('names'), consistentRead: true }]);
    expect(back?.['a.b']).toBe(1);
    expect(back?.['x-y']).toBe('z');
  });

  it('copies maps, lists, exact numbers, sets and binary byte for byte', async () => {
    const [src] = await lookupItems(adapter, [{ key: key('src'), consistentRead: true }]);
    expect(src).toBeDefined();
    expect(src?.ss).toBeInstanceOf(Set);
    expect(src?.bin).toBeInstanceOf(Uint8Array);
    expect(src?.small).toBe(42);
    expect(String(src?.big)).toBe('12345678901234567890.123456789');
    const fields = Object.entries(src ?? {})
      .filter(([name]) => name !== 'PK' && name !== 'SK')
      .map(([name, value]) => fill(name, value));
    expect(await adapter.write([req('dst', ...fields)], { concurrency: 1 })).toEqual([{ status: 'applied' }]);
    const dst = normalise(await raw('dst'));
    const expected = normalise(await raw('src'));
    for (const name of Object.keys(expected)) expect({ [name]: dst[name] }).toEqual({ [name]: expected[name] });
  });

  it('fill-only: a value already there is a conflict and stays, even our own value on a first attempt', async () => {
    const stats = adapter.stats();
    const results = await adapter.write(
      [
        req('other', fill('thumbnailUrl', 'https://ours/1.jpg')),
        req('same', fill('thumbnailUrl', 'https://ours/1.jpg')),
        req('null', fill('thumbnailUrl', 'https://ours/1.jpg')),
        req('deleted', fill('thumbnailUrl', 'https://ours/1.jpg')),
      ],
      { concurrency: 4 },
    );
    // `same` already holds our value, but this request was sent once: someone else wrote it, so
    // it is not ours to claim (an undo must not revert it). Lost acknowledgements are the
    // retried case, tested below.
    expect(results).toEqual([{ status: 'conflict' }, { status: 'conflict' }, { status: 'applied' }, { status: 'not_found' }]);
    expect((await raw('same'))?.thumbnailUrl).toEqual({ S: 'https://ours/1.jpg' });
    expect((await raw('other'))?.thumbnailUrl).toEqual({ S: 'https://other/1.jpg' });
    expect((await raw('null'))?.thumbnailUrl).toEqual({ S: 'https://ours/1.jpg' });
    // The update never creates the missing item.
    expect(await raw('deleted')).toBeUndefined();
    // Each failed condition costs exactly one consistent re-read.
    expect((adapter.stats().GetItem ?? 0) - (stats.GetItem ?? 0)).toBe(3);
  });

  it('keeps the other writer’s value when the item changed between read and write', async () => {
    const [before] = await lookupItems(adapter, [{ key: key('raced'), consistentRead: true }]);
    const client = rawClient(db.endpoint);
    await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: rawKey('raced'),
        UpdateExpression: 'SET thumbnailUrl = :v',
        ExpressionAttributeValues: { ':v': { S: 'v2' } },
      }),
    );
    client.destroy();
    const overwrite: FieldWrite = {
      name: 'thumbnailUrl',
      value: 'v3',
      guard: 'unchanged',
      before: before?.thumbnailUrl,
    };
    expect(await adapter.write([req('raced', overwrite)], { concurrency: 1 })).toEqual([{ status: 'conflict' }]);
    expect((await raw('raced'))?.thumbnailUrl).toEqual({ S: 'v2' });
    // With the current value as `before`, the same overwrite applies.
    expect(await adapter.write([req('raced', { ...overwrite, before: 'v2' })], { concurrency: 1 })).toEqual([{ status: 'applied' }]);
    expect((await raw('raced'))?.thumbnailUrl).toEqual({ S: 'v3' });
  });

  it('writes touch fields together with guarded ones', async () => {
    const results = await adapter.write(
      [
        req('touch', fill('thumbnailUrl', 't'), {
          name: 'updatedAt',
          value: '2025-01-01T00:00:00.000Z',
          guard: 'none',
        }),
      ],
      { concurrency: 1 },
    );
    expect(results).toEqual([{ status: 'applied' }]);
    const item = await raw('touch');
    expect(item?.updatedAt).toEqual({ S: '2025-01-01T00:00:00.000Z' });
    expect(item?.thumbnailUrl).toEqual({ S: 't' });
  });

  it('reports applied when the write landed but its acknowledgement was lost', async () => {
    proxy.reset();
    const stats = adapter.stats();
    loseAckFor = 'MEDIA#lostack';
    const results = await adapter.write([req('lostack', fill('thumbnailUrl', 'mine'))], {
      concurrency: 1,
    });
    expect(results).toEqual([{ status: 'applied' }]);
    // First attempt landed (answer replaced by a 500), the SDK's retry hit our own guard.
    expect(proxy.counts().UpdateItem).toBe(2);
    expect((adapter.stats().UpdateItem ?? 0) - (stats.UpdateItem ?? 0)).toBe(2);
    expect(proxy.counts().GetItem).toBe(1);
  });

  it('returns retry when throttling outlives the SDK retries', async () => {
    const [result] = await adapter.write([req('throttle', fill('thumbnailUrl', 'x'))], {
      concurrency: 1,
    });
    expect(result?.status).toBe('retry');
    expect(result && 'message' in result ? result.message : '').toMatch(/throughput/i);
  });

  it('classifies item-size and other validation failures', async () => {
    const results = await adapter.write([req('big', fill('blob', 'x'.repeat(410 * 1024))), req('big', fill('SK', 'other'))], {
      concurrency: 2,
    });
    expect(results[0]).toMatchObject({ status: 'failed', reason: 'item_too_large' });
    expect(results[1]).toMatchObject({ status: 'failed', reason: 'write_rejected' });
  });

  it('keeps at most `concurrency` writes in flight and answers in request order', async () => {
    const slow = await startCountingProxy(db.endpoint, { latencyMs: 20 });
    const a = await createDynamoAdapter(target(slow.endpoint, TABLE));
    try {
      const requests = Array.from({ length: 40 }, (_, i) => req(`c${i}`, fill('n', i)));
      requests.splice(7, 0, req('nowhere', fill('n', -1)));
      const results = await a.write(requests, { concurrency: 8 });
      expect(results.length).toBe(41);
      expect(results[7]).toEqual({ status: 'not_found' });
      expect(results.filter((r) => r.status === 'applied').length).toBe(40);
      expect(slow.peakInFlight()).toBeLessThanOrEqual(8);
      expect(slow.peakInFlight()).toBeGreaterThan(1);
      expect((await raw('c39'))?.n).toEqual({ N: '39' });
    } finally {
      await a.close();
      await slow.stop();
    }
  });
});
