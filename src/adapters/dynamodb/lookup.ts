/**
 * Batched lookups by primary key: BatchGetItem with at most 100 keys per call, each distinct key
 * fetched once, unprocessed keys retried with backoff until every key has an answer.
 */
import { DatafixError } from '../../errors.js';
import type { Item, LookupRequest } from '../types.js';
import { pickKey, stableKey, toWritable } from './codec.js';
import { type DynamoContext, MAX_BACKOFF_MS, sendRead } from './context.js';
import { backoffMs, forEachLimit, sleep } from './retry.js';

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

/** Answers in request order; `undefined` where no item has that key. */
export async function lookup(ctx: DynamoContext, requests: readonly LookupRequest[]): Promise<(Item | undefined)[]> {
  const wanted = new Map<string, Wanted>();
  const ids = requests.map((r) => {
    const table = r.table ?? ctx.target.table;
    const id = stableKey(table, r.key);
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

  const found = new Map<string, Item>();
  await forEachLimit(calls, BATCH_CONCURRENCY, async (call) => {
    const info = await ctx.tables.get(call.table);
    for (const item of await batchGet(ctx, call.table, call.consistent, call.keys)) {
      found.set(stableKey(call.table, pickKey(item, info.keyNames)), item);
    }
  });
  return ids.map((id) => found.get(id));
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
