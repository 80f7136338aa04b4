import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter } from '../../src/adapters/types.js';
import { DatafixError } from '../../src/errors.js';
import type { FixPlan, LookupPlan } from '../../src/plan/types.js';
import { createMediaTable, type RunningDynalite, rawClient, startDynalite } from '../helpers/dynalite.js';
import { equals, plan, ref, scanSource, target, videoQuery } from './fixtures.js';

const TABLE = 'media-check';
const KEYS_ONLY = 'keys-only-check';

let db: RunningDynalite;
let adapter: Adapter;

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  const client = rawClient(db.endpoint);
  await client.send(
    new CreateTableCommand({
      TableName: KEYS_ONLY,
      AttributeDefinitions: [
        { AttributeName: 'PK', AttributeType: 'S' },
        { AttributeName: 'SK', AttributeType: 'S' },
        { AttributeName: 'GSI8PK', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        { IndexName: 'GSI8', KeySchema: [{ AttributeName: 'GSI8PK', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  client.destroy();
  adapter = await createDynamoAdapter(target(db.endpoint, TABLE));
});

afterAll(async () => {
  await adapter?.close();
  await db?.stop();
});

async function checkError(p: FixPlan, a: Adapter = adapter): Promise<DatafixError> {
  try {
    await a.check(p);
  } catch (err) {
    expect(err).toBeInstanceOf(DatafixError);
    return err as DatafixError;
  }
  throw new Error('check() passed');
}

const t = () => target(db.endpoint, TABLE);
const lookupPlan = (key: string[], table?: string): LookupPlan => ({
  name: 'job',
  ...(table ? { table } : {}),
  key: key.map((k) => [k, { kind: 'literal', value: 'x' }] as const),
  consistentRead: false,
  needs: [],
});

describe('check', () => {
  it('accepts the shipped layout: GSI8 query, PK/SK update, lookup by PK/SK', async () => {
    await expect(adapter.check(plan(t(), videoQuery(), { lookups: [lookupPlan(['PK', 'SK'])] }))).resolves.toBeUndefined();
    await expect(adapter.check(plan(t(), scanSource({ segments: 4 })))).resolves.toBeUndefined();
  });

  it('reports a missing table as a config error', async () => {
    const missing = await createDynamoAdapter(target(db.endpoint, 'no-such-table'));
    try {
      const err = await checkError(plan(target(db.endpoint, 'no-such-table'), videoQuery()), missing);
      expect(err).toMatchObject({ category: 'config', code: 'DF401' });
      expect(err.message).toContain('no-such-table');
    } finally {
      await missing.close();
    }
  });

  it('reports a missing lookup table', async () => {
    const err = await checkError(plan(t(), videoQuery(), { lookups: [lookupPlan(['jobId'], 'jobs-missing')] }));
    expect(err).toMatchObject({ category: 'config', code: 'DF401' });
  });

  it('reports a missing index and names the ones that exist', async () => {
    const err = await checkError(plan(t(), videoQuery({ index: 'GSI9' })));
    expect(err).toMatchObject({ category: 'config', code: 'DF402' });
    expect(err.message).toContain('GSI8');
  });

  it('reports an index that does not project the fields the update diffs against', async () => {
    const other = await createDynamoAdapter(target(db.endpoint, KEYS_ONLY));
    try {
      const err = await checkError(plan(target(db.endpoint, KEYS_ONLY), videoQuery({ sortKey: undefined })), other);
      expect(err).toMatchObject({ category: 'config', code: 'DF402' });
      expect(err.message).toContain('KEYS_ONLY');
    } finally {
      await other.close();
    }
  });

  it('reports an update key that is not the table key', async () => {
    const base = plan(t(), videoQuery());
    const err = await checkError({
      ...base,
      update: { ...base.update, key: base.update.key.slice(0, 1) },
    });
    expect(err).toMatchObject({ category: 'config', code: 'DF403' });
    expect(err.message).toMatch(/PK.*SK/);
    const wrong = await checkError({
      ...base,
      update: { ...base.update, key: [['id', { kind: 'literal', value: 'x' }]] },
    });
    expect(wrong).toMatchObject({ category: 'config', code: 'DF403' });
  });

  it('reports a write to a key attribute', async () => {
    const base = plan(t(), videoQuery());
    const err = await checkError({
      ...base,
      update: { ...base.update, touch: [{ field: 'SK', template: { kind: 'literal', value: 'x' } }] },
    });
    expect(err).toMatchObject({ category: 'config', code: 'DF403' });
  });

  it('reports query keys that do not match the index key schema', async () => {
    const pk = await checkError(plan(t(), videoQuery({ partitionKey: { name: 'PK', value: 'MEDIA_BY_TYPE_AND_CREATOR' } })));
    expect(pk).toMatchObject({ category: 'config', code: 'DF404' });
    const sk = await checkError(plan(t(), videoQuery({ sortKey: { name: 'SK', op: 'beginsWith', values: ['video#'] } })));
    expect(sk).toMatchObject({ category: 'config', code: 'DF404' });
    const filter = await checkError(plan(t(), videoQuery({ filter: equals([ref('GSI8SK'), 'x']) })));
    expect(filter).toMatchObject({ category: 'config', code: 'DF404' });
  });

  it('reports a lookup key that is not the lookup table key', async () => {
    const err = await checkError(plan(t(), videoQuery(), { lookups: [lookupPlan(['PK'])] }));
    expect(err).toMatchObject({ category: 'config', code: 'DF406' });
  });

  it('reports an unreachable endpoint as a connection error without credentials', async () => {
    const down = await createDynamoAdapter(target('http://127.0.0.1:9', TABLE), { maxAttempts: 1 });
    try {
      const err = await checkError(plan(target('http://127.0.0.1:9', TABLE), videoQuery()), down);
      expect(err).toMatchObject({ category: 'connection', code: 'DF410' });
      expect(err.message).toContain('http://127.0.0.1:9');
      expect(err.message).not.toContain('local');
    } finally {
      await down.close();
    }
  });
});
