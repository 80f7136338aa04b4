/**
 * The source reader: paged Query, and Scan with DynamoDB parallel-scan segments. Memory stays
 * bounded: a query holds one page, a scan at most one page per segment request in flight. Every
 * response page is yielded, empty or not, so the cursor keeps moving through long stretches
 * that a filter removes.
 */
import { setMaxListeners } from 'node:events';
import type { QueryCommandOutput, ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import { DatafixError } from '../../errors.js';
import type { SourcePlan } from '../../plan/types.js';
import type { CountOptions, Item, ReadOptions, RecordCount, SourcePage, SourceRecord } from '../types.js';
import { badCursor, decodeKey, encodeKey, pickKey } from './codec.js';
import { type DynamoContext, sendRead } from './context.js';
import { ExpressionBuilder, filterExpression, keyConditionExpression } from './expressions.js';
import { isAbort } from './failures.js';
import { findIndex } from './schema.js';

/** DynamoDB's limit on TotalSegments. */
const MAX_SEGMENTS = 1_000_000;
/**
 * Segment requests in flight at once in one process. Each holds at most one page, so this also
 * bounds memory; more segments than this are served round-robin.
 */
const MAX_SEGMENTS_IN_FLIGHT = 16;

/**
 * Resume position of a scan: each segment this reader owns, with where it stopped. A segment
 * with neither `lastKey` nor `done` has not returned a page yet and starts from the beginning.
 */
export interface ScanCursor {
  readonly totalSegments: number;
  readonly segments: readonly {
    readonly segment: number;
    readonly lastKey?: Record<string, unknown>;
    readonly done?: true;
  }[];
}

interface SegmentState {
  readonly segment: number;
  lastKey: Item | undefined;
  done: boolean;
}

function toRecords(items: readonly Item[], keyNames: readonly string[]): SourceRecord[] {
  return items.map((item) => ({ key: pickKey(item, keyNames), item }));
}

/**
 * An estimate of the records a scan yields, from the item count DescribeTable reports for the
 * table or the scanned index (DynamoDB refreshes it about every six hours; a filter makes the
 * real number smaller), shared evenly among segments. Undefined for a query (the table's count
 * says nothing of one partition), for a resumed scan (how much of each segment is left is
 * unknown), and while DynamoDB reports 0 items (a new table, or a server that keeps no count).
 */
export async function estimateCount(ctx: DynamoContext, source: SourcePlan, options: CountOptions): Promise<RecordCount | undefined> {
  if (source.kind !== 'scan' || options.cursor !== undefined) return undefined;
  const info = await ctx.tables.get(ctx.target.table);
  const items = source.index === undefined ? info.itemCount : findIndex(info, source.index).itemCount;
  if (!items) return undefined;
  return { records: Math.ceil(items / (options.segment?.total ?? 1)), estimate: true };
}

/** Streams the source's pages; see `ReadOptions` for cursor and segment semantics. */
export async function* readPages(ctx: DynamoContext, source: SourcePlan, options: ReadOptions): AsyncGenerator<SourcePage> {
  if (source.kind === 'table') {
    throw new DatafixError('config', 'DF205', 'a DynamoDB target reads with source.query or source.scan, not source.table');
  }
  const info = await ctx.tables.get(ctx.target.table);
  const index = source.index === undefined ? undefined : findIndex(info, source.index);
  const b = new ExpressionBuilder();
  const keyCondition = source.kind === 'query' ? keyConditionExpression(source.partitionKey, source.sortKey, b) : undefined;
  const filter = source.filter ? filterExpression(source.filter, b) : undefined;
  const names = b.attributeNames;
  const values = b.attributeValues;
  const base = {
    TableName: info.name,
    ...(index ? { IndexName: index.name } : {}),
    ...(filter !== undefined ? { FilterExpression: filter } : {}),
    ...(names ? { ExpressionAttributeNames: names } : {}),
    ...(values ? { ExpressionAttributeValues: values } : {}),
    Limit: Math.max(1, Math.floor(options.pageSize)),
    // Global secondary indexes are eventually consistent only; DynamoDB rejects the flag there.
    ...(source.consistentRead && index?.kind !== 'global' ? { ConsistentRead: true } : {}),
  };

  if (source.kind === 'query') {
    const { QueryCommand } = ctx.lib;
    let startKey = options.cursor === undefined || options.cursor === null ? undefined : decodeKey(options.cursor, ctx.NumberValue);
    const signal = options.signal;
    for (;;) {
      if (signal?.aborted) return;
      const input = {
        ...base,
        KeyConditionExpression: keyCondition,
        ScanIndexForward: !source.newestFirst,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      };
      let out: QueryCommandOutput;
      try {
        out = await sendRead(ctx, 'Query', () => ctx.doc.send(new QueryCommand(input), { abortSignal: signal }), signal);
      } catch (err) {
        // An interrupt ends the stream quietly; the last page's cursor is where to resume.
        if (signal?.aborted || isAbort(err)) return;
        throw err;
      }
      startKey = out.LastEvaluatedKey;
      yield {
        records: toRecords(out.Items ?? [], info.keyNames),
        cursor: startKey ? encodeKey(startKey) : undefined,
      };
      if (!startKey) return;
    }
  }

  yield* readScan(ctx, base, info.keyNames, source.segments, options);
}

async function* readScan(
  ctx: DynamoContext,
  base: Record<string, unknown> & { TableName: string },
  keyNames: readonly string[],
  planSegments: number,
  options: ReadOptions,
): AsyncGenerator<SourcePage> {
  const { ScanCommand } = ctx.lib;
  const total = options.segment?.total ?? planSegments;
  if (!Number.isInteger(total) || total < 1 || total > MAX_SEGMENTS) {
    throw new DatafixError(
      'usage',
      'DF723',
      `the total number of scan segments must be a whole number from 1 to ${MAX_SEGMENTS}, got ${total}`,
    );
  }
  const owned = options.segment ? [options.segment.index] : Array.from({ length: total }, (_, i) => i);
  if (options.segment) {
    const i = options.segment.index;
    if (!Number.isInteger(i) || i < 0 || i >= total) {
      throw new DatafixError('usage', 'DF723', `--segment must be a whole number from 0 to ${total - 1} (segments count from 0), got ${i}`);
    }
  }
  const states = initialStates(ctx, owned, total, options.cursor);

  const signal = options.signal;
  if (signal?.aborted) return;
  // One controller for this reader: stopping early (break, error, interrupt) cancels the
  // requests other segments still have in flight.
  const inner = new AbortController();
  // Each request in flight listens on it (the SDK's handler, and a retry's backoff): up to
  // 16 segments at once pass Node's default of 10, which would print a MaxListenersExceeded
  // warning on the user's terminal for what is a bounded number of listeners.
  setMaxListeners(4 * MAX_SEGMENTS_IN_FLIGHT, inner.signal);
  const onAbort = (): void => inner.abort();
  signal?.addEventListener('abort', onAbort, { once: true });

  type Landed = { state: SegmentState; out: ScanCommandOutput };
  const inFlight = new Map<number, Promise<Landed>>();
  const launch = (state: SegmentState): void => {
    const input = {
      ...base,
      ...(total > 1 ? { Segment: state.segment, TotalSegments: total } : {}),
      ...(state.lastKey ? { ExclusiveStartKey: state.lastKey } : {}),
    };
    const request = sendRead(ctx, 'Scan', () => ctx.doc.send(new ScanCommand(input), { abortSignal: inner.signal }), inner.signal).then(
      (out) => ({ state, out }),
    );
    // A request still in flight when the reader stops must not surface as an unhandled rejection.
    request.catch(() => undefined);
    inFlight.set(state.segment, request);
  };

  try {
    const waiting = states.filter((state) => !state.done);
    const fill = (): void => {
      while (inFlight.size < MAX_SEGMENTS_IN_FLIGHT && waiting.length > 0 && !signal?.aborted) {
        launch(waiting.shift() as SegmentState);
      }
    };
    fill();
    while (inFlight.size > 0) {
      let landed: Landed;
      try {
        landed = await Promise.race(inFlight.values());
      } catch (err) {
        if (signal?.aborted || isAbort(err)) return;
        throw err;
      }
      const { state, out } = landed;
      inFlight.delete(state.segment);
      state.lastKey = out.LastEvaluatedKey;
      state.done = !out.LastEvaluatedKey;
      // The next page of this segment loads while the consumer works on this one.
      if (!state.done) waiting.push(state);
      fill();
      const allDone = states.every((s) => s.done);
      yield {
        records: toRecords(out.Items ?? [], keyNames),
        cursor: allDone ? undefined : scanCursor(total, states),
        ...(total > 1 ? { segment: state.segment } : {}),
      };
      if (signal?.aborted) return;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    inner.abort();
  }
}

function scanCursor(total: number, states: readonly SegmentState[]): ScanCursor {
  return {
    totalSegments: total,
    segments: states.map((s) =>
      s.done
        ? { segment: s.segment, done: true as const }
        : s.lastKey
          ? { segment: s.segment, lastKey: encodeKey(s.lastKey) }
          : { segment: s.segment },
    ),
  };
}

function initialStates(ctx: DynamoContext, owned: readonly number[], total: number, cursor: unknown): SegmentState[] {
  if (cursor === undefined || cursor === null) {
    return owned.map((segment) => ({ segment, lastKey: undefined, done: false }));
  }
  const c = cursor as Partial<ScanCursor>;
  if (typeof c !== 'object' || !Array.isArray(c.segments) || typeof c.totalSegments !== 'number') {
    throw badCursor('expected a scan cursor with totalSegments and segments');
  }
  if (c.totalSegments !== total) {
    throw badCursor(`it was made with ${c.totalSegments} segments, this run uses ${total}`);
  }
  return owned.map((segment) => {
    const saved = c.segments?.find((s) => s && s.segment === segment);
    if (!saved) throw badCursor(`it has no position for segment ${segment}`);
    if (saved.done === true) return { segment, lastKey: undefined, done: true };
    return {
      segment,
      lastKey: saved.lastKey === undefined ? undefined : decodeKey(saved.lastKey, ctx.NumberValue),
      done: false,
    };
  });
}
