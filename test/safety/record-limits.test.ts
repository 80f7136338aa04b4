/**
 * One record's data never stops a page or a run: a key or value that breaks a per-record limit of
 * the backend fails that record alone with a named reason, in lookups as in writes, every other
 * record of the page is still looked up and written, and the run exits 1.
 */
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { type Adapter, LookupRejected } from '../../src/adapters/types.js';
import { ExactNumber } from '../../src/plan/values.js';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, rawClient, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, I2V_FIX, jsonSummary, show, videoDataset } from './support.js';

const tmp = useTempDirs();

describe('DynamoDB', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  /** Keys whose BatchGetItem the proxy answers with DynamoDB's ValidationException. */
  const refusedPk = 'MEDIA#refused-by-dynamodb';

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint, {
      // A key DynamoDB refuses for a reason datafix does not check itself: the whole batch fails.
      fault: (r) =>
        r.operation === 'BatchGetItem' && r.body.includes(refusedPk)
          ? {
              respond: {
                status: 400,
                body: {
                  __type: 'com.amazon.coral.validate#ValidationException',
                  message: 'One or more parameter values were invalid: refused for this test',
                },
              },
            }
          : undefined,
    });
  }, 30_000 * TIME_SCALE);

  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  it('a lookup key over 2048 bytes fails its video with key_too_large; the run goes on and exits 1', async () => {
    const table = 'media-key-limits';
    const data = videoDataset(40, 'k');
    const longId = 'x'.repeat(2100);
    const createdAt = '2026-01-01T00:00:00.000Z';
    const bad = {
      PK: 'MEDIA#long-id',
      SK: 'METADATA',
      id: longId,
      type: 'video',
      createdAt,
      updatedAt: createdAt,
      GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
      GSI8SK: `video#${createdAt}#long-id`,
    };
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, [...data.items, bad]);
    const dir = tmp();
    const run = await runCli(['run', I2V_FIX, '--json'], { cwd: dir.path, env: dynamoEnv(table, dynamo.endpoint) });
    expect(run.code, show(run)).toBe(1);
    expect(jsonSummary(run)).toMatchObject({ total: 41, updated: data.updatable.length, failed: 1 });
    expect((jsonSummary(run).reasons as Record<string, number>).key_too_large).toBe(1);

    const client = rawClient(dynamo.endpoint);
    try {
      for (const pk of data.updatable) {
        const out = await client.send(new GetItemCommand({ TableName: table, Key: { PK: { S: pk }, SK: { S: 'METADATA' } } }));
        expect(out.Item?.thumbnailUrl, pk).toBeDefined();
      }
    } finally {
      client.destroy();
    }
  });

  describe('lookup and write by key', () => {
    let adapter: Adapter;
    const table = 'media-key-shapes';
    const numeric = 'numeric-keys';

    beforeAll(async () => {
      await createMediaTable(dynamo.endpoint, table);
      const client = rawClient(dynamo.endpoint);
      await client.send(
        new CreateTableCommand({
          TableName: numeric,
          AttributeDefinitions: [{ AttributeName: 'n', AttributeType: 'N' }],
          KeySchema: [{ AttributeName: 'n', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      client.destroy();
      await seedItems(dynamo.endpoint, table, [
        { PK: 'MEDIA#a', SK: 'METADATA', id: 'a' },
        { PK: 'MEDIA#b', SK: 'METADATA', id: 'b' },
      ]);
      await seedItems(dynamo.endpoint, numeric, [{ n: 7, id: 'seven' }]);
      adapter = await createDynamoAdapter(
        { backend: 'dynamodb', table, region: 'us-east-1', endpoint: proxy.endpoint },
        { retryBaseMs: 1, maxAttempts: 1 },
      );
    });

    afterAll(async () => {
      await adapter?.close();
    });

    it('each bad key fails alone with its reason; the good keys of the same batch are still found', async () => {
      const found = await adapter.lookup([
        { key: { PK: 'MEDIA#a', SK: 'METADATA' }, consistentRead: true },
        { key: { PK: 'p'.repeat(2049), SK: 'METADATA' }, consistentRead: true },
        { key: { PK: 'MEDIA#a', SK: 's'.repeat(1025) }, consistentRead: true },
        { key: { PK: '', SK: 'METADATA' }, consistentRead: true },
        { key: { PK: 5, SK: 'METADATA' }, consistentRead: true },
        { key: { PK: 'MEDIA#a', SK: 'METADATA', extra: 1 }, consistentRead: true },
        { key: { PK: 'MEDIA#b', SK: 'METADATA' }, consistentRead: true },
        { table: numeric, key: { n: 'seven' }, consistentRead: true },
        { table: numeric, key: { n: new ExactNumber('1234567890123456789012345678901234567890') }, consistentRead: true },
        { table: numeric, key: { n: 7 }, consistentRead: true },
        { key: { PK: refusedPk, SK: 'METADATA' }, consistentRead: true },
      ]);
      const reasons = found.map((f) => (f instanceof LookupRejected ? f.reason : (f as { id?: string } | undefined)?.id));
      expect(reasons).toEqual([
        'a',
        'key_too_large',
        'key_too_large',
        'key_invalid',
        'key_invalid',
        'key_invalid',
        'b',
        'key_invalid',
        'key_invalid',
        'seven',
        'key_invalid',
      ]);
    });

    it('a write whose key or value DynamoDB cannot hold fails alone with its reason; the others are written', async () => {
      const results = await adapter.write(
        [
          { key: { PK: 'MEDIA#a', SK: 'METADATA' }, fields: [{ name: 'note', value: 'ok-a', guard: 'absent', before: undefined }] },
          { key: { PK: 'MEDIA#b', SK: 's'.repeat(1025) }, fields: [{ name: 'note', value: 'x', guard: 'absent', before: undefined }] },
          {
            key: { PK: 'MEDIA#b', SK: 'METADATA' },
            fields: [{ name: 'note', value: { n: new ExactNumber('1e126') }, guard: 'absent', before: undefined }],
          },
          { key: { PK: 'MEDIA#b', SK: 'METADATA' }, fields: [{ name: 'note', value: new Set(), guard: 'absent', before: undefined }] },
        ],
        { concurrency: 1 },
      );
      expect(results).toEqual([
        { status: 'applied' },
        { status: 'failed', reason: 'key_too_large', message: expect.stringContaining('1025 bytes') },
        { status: 'failed', reason: 'number_out_of_range', message: expect.stringContaining('1e126') },
        { status: 'failed', reason: 'value_invalid', message: expect.stringContaining('empty set') },
      ]);
      const client = rawClient(dynamo.endpoint);
      try {
        const b = await client.send(new GetItemCommand({ TableName: table, Key: { PK: { S: 'MEDIA#b' }, SK: { S: 'METADATA' } } }));
        expect(b.Item).toEqual({ PK: { S: 'MEDIA#b' }, SK: { S: 'METADATA' }, id: { S: 'b' } });
        const a = await client.send(new GetItemCommand({ TableName: table, Key: { PK: { S: 'MEDIA#a' }, SK: { S: 'METADATA' } } }));
        expect(a.Item?.note).toEqual({ S: 'ok-a' });
      } finally {
        client.destroy();
      }
    });
  });
});

describe('SQLite', () => {
  it('a lookup key SQLite cannot compare with a column fails alone with key_invalid; the others are found', async () => {
    const dir = tmp();
    const path = dir.file('keys.db');
    const db = new Database(path);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (1, 'one'), (2, 'two');");
    db.close();
    const adapter = createSqliteAdapter({ backend: 'sqlite', path, busyTimeoutMs: 1000 });
    try {
      const found = await adapter.lookup([
        { table: 't', key: { id: 1 }, consistentRead: true },
        { table: 't', key: { id: { nested: 1 } }, consistentRead: true },
        { table: 't', key: { id: [1] }, consistentRead: true },
        { table: 't', key: { id: new ExactNumber('99999999999999999999') }, consistentRead: true },
        { table: 't', key: { id: 2 }, consistentRead: true },
      ]);
      expect(found.map((f) => (f instanceof LookupRejected ? f.reason : (f as { name?: string } | undefined)?.name))).toEqual([
        'one',
        'key_invalid',
        'key_invalid',
        'key_invalid',
        'two',
      ]);
    } finally {
      await adapter.close();
    }
  });
});
