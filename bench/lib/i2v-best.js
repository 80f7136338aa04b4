/**
 * The best case for the I2V thumbnail backfill: what a careful engineer would write for this one
 * job with the same SDK (@aws-sdk/lib-dynamodb), the same concurrency and the same guards as
 * fixes/i2v-thumbnails.yaml, without a journal:
 *
 * - query GSI8 newest first in pages of 200, reading page N+1 while page N is processed;
 * - per page: drop videos that already have both thumbnail fields, then one BatchGetItem round for
 *   the page's jobs (100 keys per request, unprocessed keys retried), then one for their sources;
 * - one conditional UpdateItem per video, kept at `concurrency` in flight across page boundaries:
 *   each thumbnail field only where the video lacks it (attribute_not_exists) and only when the
 *   source has it, and updatedAt only where it still holds the value read, as datafix guards it.
 *
 * Semantics match the fix: the same skip reasons in the same order, the same fields written.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

const PAGE = 200;
const BATCH_GET_MAX = 100;

/** Runs the backfill; returns { total, updated, skipped, errors, reasons, requests }. */
export async function runBestCaseBackfill({ table, endpoint, region = 'us-east-1', concurrency = 10 }) {
  const client = new DynamoDBClient({
    region,
    ...(endpoint ? { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  const doc = DynamoDBDocumentClient.from(client);
  const stats = { total: 0, updated: 0, skipped: 0, errors: 0, reasons: {} };
  const skip = (reason) => {
    stats.skipped++;
    stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
  };
  const now = new Date().toISOString();

  const readPage = (lastKey) =>
    doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: 'GSI8',
        KeyConditionExpression: 'GSI8PK = :pk AND begins_with(GSI8SK, :prefix)',
        ExpressionAttributeValues: { ':pk': 'MEDIA_BY_TYPE_AND_CREATOR', ':prefix': 'video#' },
        ScanIndexForward: false,
        Limit: PAGE,
        ExclusiveStartKey: lastKey,
      }),
    );

  /** Items by PK for `pks` (SK METADATA), BatchGetItem in chunks of 100, retrying unprocessed keys. */
  const getAll = async (pks) => {
    const found = new Map();
    const unique = [...new Set(pks)];
    const chunks = [];
    for (let i = 0; i < unique.length; i += BATCH_GET_MAX) chunks.push(unique.slice(i, i + BATCH_GET_MAX));
    await Promise.all(
      chunks.map(async (chunk) => {
        let keys = chunk.map((PK) => ({ PK, SK: 'METADATA' }));
        while (keys.length > 0) {
          const out = await doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys } } }));
          for (const item of out.Responses?.[table] ?? []) found.set(item.PK, item);
          keys = out.UnprocessedKeys?.[table]?.Keys ?? [];
        }
      }),
    );
    return found;
  };

  // Writes stay at `concurrency` in flight across pages: a slot frees, the next write starts.
  const inFlight = new Set();
  const write = async (video, source) => {
    const sets = ['updatedAt = :now'];
    const conditions = [video.updatedAt === undefined ? 'attribute_not_exists(updatedAt)' : 'updatedAt = :was'];
    const values = { ':now': now, ...(video.updatedAt === undefined ? {} : { ':was': video.updatedAt }) };
    for (const field of ['thumbnailUrl', 'thumbnailUrls']) {
      if (video[field] === undefined && source[field] !== undefined) {
        sets.push(`${field} = :${field}`);
        conditions.push(`attribute_not_exists(${field})`);
        values[`:${field}`] = source[field];
      }
    }
    try {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { PK: video.PK, SK: video.SK },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeValues: values,
        }),
      );
      stats.updated++;
    } catch {
      stats.errors++;
    }
  };
  const startWrite = async (video, source) => {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const p = write(video, source).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  try {
    let next = readPage(undefined);
    for (;;) {
      const page = await next;
      if (page.LastEvaluatedKey) next = readPage(page.LastEvaluatedKey);
      const videos = page.Items ?? [];
      stats.total += videos.length;
      const open = [];
      for (const v of videos) {
        if (v.thumbnailUrl !== undefined && v.thumbnailUrls !== undefined) skip('already_has_thumbnails');
        else open.push(v);
      }
      const jobs = await getAll(open.map((v) => `I2VJOB#${v.id}`));
      const withJob = [];
      for (const v of open) {
        const job = jobs.get(`I2VJOB#${v.id}`);
        if (!job) skip('no_i2v_job_found');
        else withJob.push([v, job]);
      }
      const sources = await getAll(withJob.map(([, job]) => `MEDIA#${job.mediaId}`));
      for (const [v, job] of withJob) {
        const source = sources.get(`MEDIA#${job.mediaId}`);
        if (!source) skip('source_media_not_found');
        else if (source.thumbnailUrl === undefined && source.thumbnailUrls === undefined) skip('source_has_no_thumbnails');
        else await startWrite(v, source);
      }
      if (!page.LastEvaluatedKey) break;
    }
    await Promise.all(inFlight);
    return stats;
  } finally {
    client.destroy();
  }
}
