import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, LookupRequest } from '../../src/adapters/types.js';
import { createMediaTable, mediaItem, type RunningDynalite, rawClient, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { lookupItems, target } from './fixtures.js';

const MEDIA = 'media-lookup';
const JOBS = 'jobs-lookup';
const EXISTING = 100;

let db: RunningDynalite;
let proxy: CountingProxy;
let adapter: Adapter;
/** When set, the next BatchGetItem answer moves half of its items to UnprocessedKeys. */
let withholdOnce = false;

const mediaKey = (i: number) => ({ PK: `MEDIA#m${i}`, SK: 'METADATA' });

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, MEDIA);
  const client = rawClient(db.endpoint);
  await client.send(
    new CreateTableCommand({
      TableName: JOBS,
      AttributeDefinitions: [{ AttributeName: 'jobId', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'jobId', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  client.destroy();
  await seedItems(
    db.endpoint,
    MEDIA,
    Array.from({ length: EXISTING }, (_, i) => mediaItem(`m${i}`, `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`)),
  );
  await seedItems(
    db.endpoint,
    JOBS,
    Array.from({ length: 5 }, (_, i) => ({ jobId: `j${i}`, mediaId: `m${i}` })),
  );
  proxy = await startCountingProxy(db.endpoint, {
    fault: (r) => {
      if (r.operation !== 'BatchGetItem' || !withholdOnce) return undefined;
      withholdOnce = false;
      return {
        afterForward: (real) => {
          const body = real.body as {
            Responses: Record<string, Record<string, unknown>[]>;
            UnprocessedKeys: Record<string, { Keys: unknown[] }>;
          };
          const [table, items] = Object.entries(body.Responses)[0] ?? ['', []];
          const held = items.splice(0, Math.floor(items.length / 2));
          body.UnprocessedKeys = {
            [table]: { Keys: held.map((item) => ({ PK: item.PK, SK: item.SK })) },
          };
          return real;
        },
      };
    },
  });
  adapter = await createDynamoAdapter(target(proxy.endpoint, MEDIA), { retryBaseMs: 1 });
});

afterAll(async () => {
  await adapter?.close();
  await proxy?.stop();
  await db?.stop();
});

describe('lookup', () => {
  it('fetches 130 distinct keys asked 250 times in 2 BatchGetItem calls, in request order', async () => {
    // 100 keys that exist and 30 that do not, each asked about once or twice, interleaved.
    const distinct = Array.from({ length: 130 }, (_, i) => i);
    const order = [...distinct, ...distinct.slice(0, 120).reverse()];
    expect(order.length).toBe(250);
    const requests: LookupRequest[] = order.map((i) => ({
      // Attribute order must not matter for duplicate detection.
      key: i % 2 === 0 ? mediaKey(i) : { SK: 'METADATA', PK: `MEDIA#m${i}` },
      consistentRead: false,
    }));
    proxy.reset();
    const before = adapter.stats().BatchGetItem ?? 0;
    const found = await lookupItems(adapter, requests);

    expect(proxy.counts().BatchGetItem).toBe(2);
    expect((adapter.stats().BatchGetItem ?? 0) - before).toBe(2);
    expect(found.length).toBe(250);
    order.forEach((i, n) => {
      if (i < EXISTING) expect(found[n]?.id).toBe(`m${i}`);
      else expect(found[n]).toBeUndefined();
    });
  });

  it('retries unprocessed keys until every key is answered', async () => {
    proxy.reset();
    withholdOnce = true;
    const requests = Array.from({ length: 40 }, (_, i) => ({ key: mediaKey(i), consistentRead: true }));
    const found = await lookupItems(adapter, requests);
    expect(found.map((item) => item?.id)).toEqual(requests.map((_, i) => `m${i}`));
    expect(proxy.counts().BatchGetItem).toBe(2);
  });

  it('reads other tables, and the target table when none is named', async () => {
    const found = await lookupItems(adapter, [
      { table: JOBS, key: { jobId: 'j3' }, consistentRead: false },
      { key: mediaKey(3), consistentRead: true },
      { table: JOBS, key: { jobId: 'nope' }, consistentRead: true },
      { table: MEDIA, key: mediaKey(3), consistentRead: false },
    ]);
    expect(found[0]).toEqual({ jobId: 'j3', mediaId: 'm3' });
    expect(found[1]?.id).toBe('m3');
    expect(found[2]).toBeUndefined();
    expect(found[3]).toEqual(found[1]);
  });

  it('answers an empty request list without calling DynamoDB', async () => {
    proxy.reset();
    expect(await lookupItems(adapter, [])).toEqual([]);
    expect(proxy.counts().BatchGetItem).toBeUndefined();
  });
});
