/**
 * An in-process DynamoDB (dynalite) on loopback for tests, plus the single-table layout the
 * shipped fix uses and helpers to seed and read it with a raw client.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  createMediaTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type LocalDynamo,
  putItems,
  startLocalDynamo,
} from '../../src/demo/local-dynamo.js';

export const TEST_REGION = LOCAL_REGION;
export const TEST_CREDENTIALS = LOCAL_CREDENTIALS;
export type RunningDynalite = LocalDynamo;

/** Starts dynalite on 127.0.0.1 with an OS-assigned port (the same server `datafix demo` uses). */
export const startDynalite = startLocalDynamo;
/** Creates the media table: PK/SK strings and GSI8 (GSI8PK/GSI8SK, projection ALL). */
export { createMediaTable };
/** Writes items with BatchWriteItem (25 per call), resending unprocessed ones. */
export const seedItems = putItems;

/** A raw client with dummy credentials and no retries to hide failures. */
export function rawClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
}

/** Creates a table keyed by PK (string) and SK (number), on demand. */
export async function createNumericSortKeyTable(endpoint: string, tableName: string): Promise<void> {
  const client = rawClient(endpoint);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [
          { AttributeName: 'PK', AttributeType: 'S' },
          { AttributeName: 'SK', AttributeType: 'N' },
        ],
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } finally {
    client.destroy();
  }
}

/** Seeds items given in the low-level AttributeValue form (exact numbers, sets, binary). */
export async function seedRawItems(endpoint: string, tableName: string, items: readonly Record<string, AttributeValue>[]): Promise<void> {
  const client = rawClient(endpoint);
  try {
    for (let i = 0; i < items.length; i += 25) {
      await client.send(
        new BatchWriteItemCommand({
          RequestItems: {
            [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
          },
        }),
      );
    }
  } finally {
    client.destroy();
  }
}

/** Reads one item in the low-level AttributeValue form, with a consistent read. */
export async function getRawItem(
  endpoint: string,
  tableName: string,
  key: Record<string, AttributeValue>,
): Promise<Record<string, AttributeValue> | undefined> {
  const client = rawClient(endpoint);
  try {
    const out = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    return out.Item;
  } finally {
    client.destroy();
  }
}

/**
 * What another application does to an item of the single-table layout (`PK`, `SK: METADATA`)
 * behind datafix's back: sets attribute `name` to the string `value` (undefined: deletes the item).
 */
export async function changeItem(endpoint: string, tableName: string, pk: string, name: string, value: string | undefined): Promise<void> {
  const client = rawClient(endpoint);
  const Key = { PK: { S: pk }, SK: { S: 'METADATA' } };
  try {
    if (value === undefined) await client.send(new DeleteItemCommand({ TableName: tableName, Key }));
    else {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key,
          UpdateExpression: 'SET #n = :v',
          ExpressionAttributeNames: { '#n': name },
          ExpressionAttributeValues: { ':v': { S: value } },
        }),
      );
    }
  } finally {
    client.destroy();
  }
}

/** A media item of the single-table layout. */
export function mediaItem(id: string, createdAt: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    PK: `MEDIA#${id}`,
    SK: 'METADATA',
    id,
    type: 'video',
    updatedAt: createdAt,
    GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
    GSI8SK: `video#${createdAt}#${id}`,
    ...extra,
  };
}
