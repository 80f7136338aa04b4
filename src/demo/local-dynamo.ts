/**
 * An in-process DynamoDB-compatible server (dynalite) on loopback, and the single-table media
 * layout the i2v fix reads (FACTS: PK/SK, GSI8 by type and creator). `datafix demo`, the tests
 * and the benchmark all use it; dynalite is loaded only when one of them asks for it.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { withoutNodeVersionNotice } from '../adapters/dynamodb/sdk-notice.js';

export const LOCAL_REGION = 'us-east-1';
/** dynalite accepts any credentials; these never leave the machine. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface LocalDynamo {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Starts dynalite in memory on 127.0.0.1 with an OS-assigned port. */
export async function startLocalDynamo(): Promise<LocalDynamo> {
  // dynalite ships no type declarations and is CommonJS.
  const require = createRequire(import.meta.url);
  const dynalite = require('dynalite') as (o: Record<string, number>) => Server;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/**
 * A client of a local server (dynalite) with its dummy credentials, without the SDK's Node-version
 * notice. Takes the client class so that the SDK is loaded only when used.
 */
export function localClient<C>(Client: new (config: Record<string, unknown>) => C, endpoint: string): C {
  return withoutNodeVersionNotice(() => new Client({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }));
}

/** Creates the media table: PK/SK strings and GSI8 (GSI8PK/GSI8SK, projection ALL). */
export async function createMediaTable(endpoint: string, table: string): Promise<void> {
  const { DynamoDBClient, CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
  const client = localClient(DynamoDBClient, endpoint);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: ['PK', 'SK', 'GSI8PK', 'GSI8SK'].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'GSI8',
            KeySchema: [
              { AttributeName: 'GSI8PK', KeyType: 'HASH' },
              { AttributeName: 'GSI8SK', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
            ProvisionedThroughput: { ReadCapacityUnits: 1000, WriteCapacityUnits: 1000 },
          },
        ],
        ProvisionedThroughput: { ReadCapacityUnits: 1000, WriteCapacityUnits: 1000 },
      }),
    );
  } finally {
    client.destroy();
  }
}

/** Writes items with BatchWriteItem (seeding only: datafix itself never writes whole items). */
export async function putItems(endpoint: string, table: string, items: readonly Record<string, unknown>[]): Promise<void> {
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient, BatchWriteCommand } = await import('@aws-sdk/lib-dynamodb');
  const client = DynamoDBDocumentClient.from(localClient(DynamoDBClient, endpoint), {
    marshallOptions: { removeUndefinedValues: true },
  });
  try {
    for (let i = 0; i < items.length; i += 25) {
      let pending: Record<string, unknown>[] | undefined = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      while (pending && pending.length > 0) {
        const out: { UnprocessedItems?: Record<string, Record<string, unknown>[]> } = await client.send(
          new BatchWriteCommand({ RequestItems: { [table]: pending as never } }),
        );
        pending = out.UnprocessedItems?.[table];
      }
    }
  } finally {
    client.destroy();
  }
}

export interface VideoCase {
  readonly id: string;
  readonly createdAt: string;
  readonly video?: Record<string, unknown>;
  /** The I2V job's source image id; absent: no job. */
  readonly sourceId?: string;
  /** The source image's attributes; absent: the job points at a missing image. */
  readonly source?: Record<string, unknown>;
}

export const mediaKey = (id: string) => ({ PK: `MEDIA#${id}`, SK: 'METADATA' });

/** Items for a list of videos with their I2V jobs and source images, laid out as in production. */
export function mediaItems(cases: readonly VideoCase[]): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = [];
  for (const c of cases) {
    items.push({
      ...mediaKey(c.id),
      id: c.id,
      type: 'video',
      createdAt: c.createdAt,
      GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
      GSI8SK: `video#${c.createdAt}#${c.id}`,
      updatedAt: c.createdAt,
      ...c.video,
    });
    if (c.sourceId !== undefined) {
      items.push({ PK: `I2VJOB#${c.id}`, SK: 'METADATA', jobId: c.id, mediaId: c.sourceId, status: 'COMPLETED' });
      if (c.source) {
        items.push({
          ...mediaKey(c.sourceId),
          id: c.sourceId,
          type: 'image',
          createdAt: c.createdAt,
          GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
          GSI8SK: `image#${c.createdAt}#${c.sourceId}`,
          ...c.source,
        });
      }
    }
  }
  return items;
}

const thumbs = (id: string) => ({
  thumbnailUrl: `https://cdn.example.com/${id}/thumb.jpg`,
  thumbnailUrls: {
    small: `https://cdn.example.com/${id}/s.jpg`,
    medium: `https://cdn.example.com/${id}/m.jpg`,
    large: `https://cdn.example.com/${id}/l.jpg`,
  },
});

/** One video per rule of the fix: every skip reason, a partial fill, and a full copy. */
export function sampleVideoCases(): VideoCase[] {
  return [
    { id: 'vid-001', createdAt: '2025-06-01T10:00:01Z', sourceId: 'img-001', source: thumbs('img-001') },
    {
      id: 'vid-002',
      createdAt: '2025-06-01T10:00:02Z',
      sourceId: 'img-002',
      source: thumbs('img-002'),
      video: { thumbnailUrl: 'https://cdn.example.com/vid-002/own.jpg' },
    },
    { id: 'vid-003', createdAt: '2025-06-01T10:00:03Z', sourceId: 'img-003', source: thumbs('img-003'), video: thumbs('vid-003') },
    { id: 'vid-004', createdAt: '2025-06-01T10:00:04Z' },
    { id: 'vid-005', createdAt: '2025-06-01T10:00:05Z', sourceId: 'img-missing-005' },
    { id: 'vid-006', createdAt: '2025-06-01T10:00:06Z', sourceId: 'img-006', source: {} },
    {
      id: 'vid-007',
      createdAt: '2025-06-01T10:00:07Z',
      sourceId: 'img-007',
      source: { thumbnailUrl: 'https://cdn.example.com/img-007/thumb.jpg' },
    },
    {
      id: 'vid-008',
      createdAt: '2025-06-01T10:00:08Z',
      sourceId: 'img-008',
      source: { thumbnailUrls: thumbs('img-008').thumbnailUrls },
      video: { thumbnailUrls: { small: 'https://cdn.example.com/vid-008/s.jpg' } },
    },
  ];
}
