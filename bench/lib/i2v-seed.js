/**
 * The seed's I2V thumbnail backfill, re-implemented faithfully from FACTS.md and the seed README
 * (000_e9403f073743a017.txt) so datafix can be measured against it:
 *
 * - query GSI8 (`GSI8PK = MEDIA_BY_TYPE_AND_CREATOR`, `begins_with(GSI8SK, "video#")`) in pages
 *   of 200, newest first, loading EVERY video into memory before processing any;
 * - then batches of I2V_BACKFILL_CONCURRENCY (default 10) processed concurrently with
 *   Promise.all, with a 100 ms pause between batches;
 * - per video: skip if it has both thumbnail fields; one GetItem for the job
 *   (`I2VJOB#<video id>`), one GetItem for the source (`MEDIA#<job.mediaId>`); skip when either
 *   is missing or the source has no thumbnails; otherwise one UpdateItem writing the fields the
 *   source has plus updatedAt (unconditionally, as the original did).
 *
 * Uses @aws-sdk/lib-dynamodb's document client with the SDK defaults, like the original.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function runSeedBackfill({ table, endpoint, region = 'us-east-1', concurrency = 10, dryRun = false }) {
  const client = new DynamoDBClient({
    region,
    ...(endpoint ? { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const stats = { total: 0, updated: 0, skipped: 0, errors: 0, reasons: {} };
  const skip = (reason) => {
    stats.skipped++;
    stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
  };

  try {
    // 1. Every video into memory first.
    const videos = [];
    let lastKey;
    do {
      const out = await doc.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'GSI8',
          KeyConditionExpression: 'GSI8PK = :pk AND begins_with(GSI8SK, :prefix)',
          ExpressionAttributeValues: { ':pk': 'MEDIA_BY_TYPE_AND_CREATOR', ':prefix': 'video#' },
          ScanIndexForward: false,
          Limit: 200,
          ExclusiveStartKey: lastKey,
        }),
      );
      videos.push(...(out.Items ?? []));
      lastKey = out.LastEvaluatedKey;
    } while (lastKey);

    const now = new Date().toISOString();
    const processVideo = async (video) => {
      stats.total++;
      try {
        if (video.thumbnailUrl && video.thumbnailUrls) return skip('already_has_thumbnails');
        const job = (await doc.send(new GetCommand({ TableName: table, Key: { PK: `I2VJOB#${video.id}`, SK: 'METADATA' } }))).Item;
        if (!job) return skip('no_i2v_job_found');
        const source = (await doc.send(new GetCommand({ TableName: table, Key: { PK: `MEDIA#${job.mediaId}`, SK: 'METADATA' } }))).Item;
        if (!source) return skip('source_media_not_found');
        if (!source.thumbnailUrl && !source.thumbnailUrls) return skip('source_has_no_thumbnails');
        const sets = ['updatedAt = :updatedAt'];
        const values = { ':updatedAt': now };
        if (source.thumbnailUrl) {
          sets.push('thumbnailUrl = :thumbnailUrl');
          values[':thumbnailUrl'] = source.thumbnailUrl;
        }
        if (source.thumbnailUrls) {
          sets.push('thumbnailUrls = :thumbnailUrls');
          values[':thumbnailUrls'] = source.thumbnailUrls;
        }
        if (!dryRun) {
          await doc.send(
            new UpdateCommand({
              TableName: table,
              Key: { PK: video.PK, SK: video.SK },
              UpdateExpression: `SET ${sets.join(', ')}`,
              ExpressionAttributeValues: values,
            }),
          );
        }
        stats.updated++;
      } catch {
        stats.errors++;
      }
    };

    // 2. Batches of `concurrency`, concurrently, with a pause between batches.
    for (let i = 0; i < videos.length; i += concurrency) {
      await Promise.all(videos.slice(i, i + concurrency).map(processVideo));
      if (i + concurrency < videos.length) await sleep(100);
    }
    return stats;
  } finally {
    client.destroy();
  }
}
