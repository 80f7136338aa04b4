/**
 * Lookups of several items: one paged Query per distinct request (DynamoDB has no batched
 * Query), at most `concurrency` in flight, each reading at most `max + 1` items (its `Limit`),
 * in ascending sort-key order. Throttled Queries are retried as every read is (sendRead); a
 * request DynamoDB refuses (a key value of the wrong type, an empty string) fails alone with
 * `key_invalid`.
 */
import type { QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { DatafixError } from '../../errors.js';
import { toJsonSafe } from '../../plan/values.js';
import { type Item, type ListLookupRequest, LookupRejected } from '../types.js';
import { toWritable } from './codec.js';
import { type DynamoContext, sendRead } from './context.js';
import { ExpressionBuilder, keyConditionExpression } from './expressions.js';
import { isValidation, messageOf } from './failures.js';
import { forEachLimit } from './retry.js';
import { findIndex } from './schema.js';

/** Answers in request order: the matching items in sort-key order, or why that request failed. */
export async function lookupMany(
  ctx: DynamoContext,
  requests: readonly ListLookupRequest[],
  concurrency: number,
): Promise<(Item[] | LookupRejected)[]> {
  // Records naming the same items share one Query.
  const distinct = new Map<string, { request: ListLookupRequest; answer?: Item[] | LookupRejected }>();
  const ids = requests.map((r) => {
    const id = JSON.stringify(toJsonSafe([r.table ?? null, r.index ?? null, r.match, r.sortKey ?? null, r.max, r.consistentRead]));
    if (!distinct.has(id)) distinct.set(id, { request: r });
    return id;
  });
  await forEachLimit([...distinct.values()], concurrency, async (entry) => {
    entry.answer = await queryAll(ctx, entry.request);
  });
  return ids.map((id) => distinct.get(id)?.answer ?? []);
}

async function queryAll(ctx: DynamoContext, r: ListLookupRequest): Promise<Item[] | LookupRejected> {
  const { QueryCommand } = ctx.lib;
  const info = await ctx.tables.get(r.table ?? ctx.target.table);
  const index = r.index === undefined ? undefined : findIndex(info, r.index, ['lookups']);
  const [partition] = Object.entries(r.match);
  if (!partition) return [];
  const b = new ExpressionBuilder();
  const writable = (v: unknown) => toWritable(v, ctx.NumberValue) as string | number;
  const keyCondition = keyConditionExpression(
    { name: partition[0], value: writable(partition[1]) },
    r.sortKey ? { name: r.sortKey.name, op: r.sortKey.op, values: r.sortKey.values.map(writable) } : undefined,
    b,
  );
  const items: Item[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const input = {
      TableName: info.name,
      ...(index ? { IndexName: index.name } : {}),
      KeyConditionExpression: keyCondition,
      ExpressionAttributeNames: b.attributeNames,
      ExpressionAttributeValues: b.attributeValues,
      // max + 1 tells "more than max" without reading the rest of the partition.
      Limit: r.max + 1 - items.length,
      // Global secondary indexes are eventually consistent only; DynamoDB rejects the flag there.
      ...(r.consistentRead && index?.kind !== 'global' ? { ConsistentRead: true } : {}),
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    };
    let out: QueryCommandOutput;
    try {
      out = await sendRead(ctx, 'Query', () => ctx.doc.send(new QueryCommand(input)));
    } catch (err) {
      // sendRead reports a ValidationException of a read as DF407: this request's values only.
      if (!(isValidation(err) || (err instanceof DatafixError && err.code === 'DF407'))) throw err;
      return new LookupRejected('key_invalid', `DynamoDB refused the query: ${messageOf(err)}`);
    }
    items.push(...(out.Items ?? []));
    startKey = out.LastEvaluatedKey;
  } while (startKey && items.length <= r.max);
  if (items.length > r.max) {
    return new LookupRejected(
      'lookup_over_max',
      `more than ${r.max} items match ${partition[0]} = ${String(partition[1])} (max: ${r.max})`,
    );
  }
  return items;
}
