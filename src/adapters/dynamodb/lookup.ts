/**
 * Batched lookups by primary key: BatchGetItem with at most 100 keys per call, each distinct key
 * fetched once, unprocessed keys retried with backoff until every key has an answer. A key that
 * breaks one of DynamoDB's per-record limits (see limits.ts) is answered with `LookupRejected`
 * without being sent; should DynamoDB still reject a batch (ValidationException, which fails the
 * whole BatchGetItem for one bad key), the batch is split until the bad key is alone, and every
 * other key is still looked up.
 */
import { DatafixError } from '../../errors.js';
import { type Item, LookupRejected, type LookupRequest } from '../types.js';
import { pickKey, stableKey, toWritable } from './codec.js';
import { type DynamoContext, MAX_BACKOFF_MS, sendRead } from './context.js';
import { isValidation, messageOf } from './failures.js';
import { keyProblem } from './limits.js';
import { backoffMs, forEachLimit, sleep } from './retry.js';
import type { TableInfo } from './schema.js';

/** BatchGetItem's limit on keys per call. */
const MAX_KEYS_PER_CALL = 100;
/** Batches in flight at once for one lookup call; enough to overlap latency, not to flood. */
const BATCH_CONCURRENCY = 4;
/** Rounds in a row in which DynamoDB processed none of the remaining keys before giving up. */
const MAX_STALLED_ROUNDS = 20;

interface Wanted {
  readonly table: string;
  readonly key: Item;
  consistent: boolean;
}

/** Answers in request order; `undefined` where no item has that key, `LookupRejected` where the key breaks a limit. */
export async function lookup(ctx: DynamoContext, requests: readonly LookupRequest[]): Promise<(Item | undefined | LookupRejected)[]> {
  const wanted = new Map<string, Wanted>();
  const rejected = new Map<string, LookupRejected>();
  const infos = new Map<string, TableInfo>();
  for (const r of requests) {
    const table = r.table ?? ctx.target.table;
    if (!infos.has(table)) infos.set(table, await ctx.tables.get(table));
  }
  const ids = requests.map((r) => {
    const table = r.table ?? ctx.target.table;
    const id = stableKey(table, r.key);
    const problem = keyProblem(r.key, infos.get(table) as TableInfo);
    if (problem) {
      rejected.set(id, new LookupRejected(problem.reason, problem.message));
      return id;
    }
    const seen = wanted.get(id);
    // One fetch serves every duplicate, so it must be as strong as the strongest request.
    if (seen) seen.consistent ||= r.consistentRead;
    else {
      wanted.set(id, {
        table,
        key: toWritable(r.key, ctx.NumberValue) as Item,
        consistent: r.consistentRead,
      });
    }
    return id;
  });

  // ConsistentRead is set per table in a BatchGetItem call, so each call covers one
  // (table, consistency) group.
  const groups = new Map<string, { table: string; consistent: boolean; keys: Item[] }>();
  for (const w of wanted.values()) {
    const groupId = JSON.stringify([w.table, w.consistent]);
    let group = groups.get(groupId);
    if (!group) {
      group = { table: w.table, consistent: w.consistent, keys: [] };
      groups.set(groupId, group);
    }
    group.keys.push(w.key);
  }
  const calls: { table: string; consistent: boolean; keys: Item[] }[] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.keys.length; i += MAX_KEYS_PER_CALL) {
      calls.push({ table: g.table, consistent: g.consistent, keys: g.keys.slice(i, i + MAX_KEYS_PER_CALL) });
    }
  }

  const found = new Map<string, Item | LookupRejected>(rejected);
  await forEachLimit(calls, BATCH_CONCURRENCY, async (call) => {
    const info = await ctx.tables.get(call.table);
    const answer = await batchGetIsolating(ctx, call.table, call.consistent, call.keys);
    for (const item of answer.items) found.set(stableKey(call.table, pickKey(item, info.keyNames)), item);
    for (const [key, why] of answer.rejected) found.set(stableKey(call.table, key), why);
  });
  return ids.map((id) => found.get(id));
}

/**
 * BatchGetItem that survives a key DynamoDB refuses: a ValidationException fails the whole call,
 * so the keys are split in halves and retried until the refused key is alone; it is answered
 * with `LookupRejected` (`key_invalid`) and every other key is still looked up.
 */
async function batchGetIsolating(
  ctx: DynamoContext,
  table: string,
  consistent: boolean,
  keys: readonly Item[],
): Promise<{ items: Item[]; rejected: [Item, LookupRejected][] }> {
  try {
    return { items: await batchGet(ctx, table, consistent, keys), rejected: [] };
  } catch (err) {
    // sendRead reports a ValidationException of a read as DF407.
    if (!(isValidation(err) || (err instanceof DatafixError && err.code === 'DF407'))) throw err;
    if (keys.length === 1) {
      return { items: [], rejected: [[keys[0] as Item, new LookupRejected('key_invalid', `DynamoDB refused the key: ${messageOf(err)}`)]] };
    }
    const half = Math.ceil(keys.length / 2);
    const a = await batchGetIsolating(ctx, table, consistent, keys.slice(0, half));
    const b = await batchGetIsolating(ctx, table, consistent, keys.slice(half));
    return { items: [...a.items, ...b.items], rejected: [...a.rejected, ...b.rejected] };
  }
}

async function batchGet(ctx: DynamoContext, table: string, consistent: boolean, keys: readonly Item[]): Promise<Item[]> {
  const { BatchGetCommand } = ctx.lib;
  const items: Item[] = [];
  let pending = keys;
  let stalled = 0;
  for (let round = 0; ; round++) {
    const request = {
      RequestItems: {
        [table]: { Keys: [...pending], ...(consistent ? { ConsistentRead: true } : {}) },
      },
    };
    const out = await sendRead(ctx, 'BatchGetItem', () => ctx.doc.send(new BatchGetCommand(request)));
    for (const item of out.Responses?.[table] ?? []) items.push(item);
    const left = out.UnprocessedKeys?.[table]?.Keys ?? [];
    if (left.length === 0) return items;
    stalled = left.length < pending.length ? 0 : stalled + 1;
    if (stalled >= MAX_STALLED_ROUNDS) {
      // Giving up loudly, never dropping keys: a lookup that silently found nothing would be
      // indistinguishable from "no such item".
      throw new DatafixError(
        'connection',
        'DF412',
        `BatchGetItem on table \`${table}\` left ${left.length} keys unprocessed ${stalled} times in a row at ${ctx.where}; lower run.concurrency/batchSize or raise the table's read capacity, then resume`,
      );
    }
    // DynamoDB returns unprocessed keys when it is throttling this table: back off before asking again.
    await sleep(backoffMs(round, ctx.retryBaseMs, MAX_BACKOFF_MS));
    pending = left;
  }
}
