/**
 * The DynamoDB backend. The AWS SDK is loaded with dynamic `import()` inside
 * `createDynamoAdapter`, so runs against SQLite never load it.
 */
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { satisfiesStrict } from '../../plan/compare.js';
import type { FixPlan, SourcePlan, ValueTestOp } from '../../plan/types.js';
import type {
  Adapter,
  CountOptions,
  Item,
  ListLookupRequest,
  LookupRejected,
  LookupRequest,
  ReadOptions,
  RecordCount,
  SourcePage,
  WriteOptions,
  WriteRequest,
  WriteResult,
} from '../types.js';
import { makeWrapNumbers } from './codec.js';
import type { DynamoContext, DynamoTarget } from './context.js';
import { describeWhere } from './failures.js';
import { lookupMany } from './list-lookup.js';
import { lookup } from './lookup.js';
import { estimateCount, readPages } from './read.js';
import { checkPlan, TableCache } from './schema.js';
import { withoutNodeVersionNotice } from './sdk-notice.js';
import { write } from './write.js';

export type { ScanCursor } from './read.js';

export interface DynamoAdapterOptions {
  /** Attempts per request inside the SDK, first try included (default 6). */
  readonly maxAttempts?: number;
  /** HTTP handler under the SDK's retry layer; tests use it to inject faults. */
  readonly requestHandler?: DynamoDBClientConfig['requestHandler'];
  /** Base delay of the adapter's own backoff (default 200 ms); tests make it small. */
  readonly retryBaseMs?: number;
  /** Extra tries of a read still throttled after the SDK's retries (default 10). */
  readonly readRetries?: number;
}

/**
 * Standard retry mode: exponential backoff with jitter plus a client-side retry quota that stops
 * retrying when most requests fail (so a throttled table is not hammered). Adaptive mode is not
 * used because its client-side rate limiter would fight the engine's own concurrency control.
 * Six attempts ride out short throttling bursts and 5xx blips inside one call (the SDK waits up
 * to a few seconds); what still fails comes back to the engine (`retry`) or to this adapter's
 * own read backoff, which wait longer without holding a request open.
 */
const DEFAULT_MAX_ATTEMPTS = 6;

/** Creates the DynamoDB adapter for a target; the client is created now, nothing is sent yet. */
export async function createDynamoAdapter(target: DynamoTarget, options: DynamoAdapterOptions = {}): Promise<Adapter> {
  const ddb = await import('@aws-sdk/client-dynamodb');
  const lib = await import('@aws-sdk/lib-dynamodb');

  // A local endpoint (dynalite, DynamoDB Local) accepts any credentials; without this, the
  // default chain would look for real ones and fail on a developer machine that has none.
  const localCredentials =
    target.endpoint !== undefined && process.env.AWS_ACCESS_KEY_ID === undefined
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {};
  const client = withoutNodeVersionNotice(
    () =>
      new ddb.DynamoDBClient({
        region: target.region,
        ...(target.endpoint !== undefined ? { endpoint: target.endpoint } : {}),
        ...localCredentials,
        maxAttempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        retryMode: 'standard',
        // Without timeouts a half-open connection would hang a run forever; a timed-out request is
        // retried by the SDK like any transient network error.
        requestHandler: options.requestHandler ?? { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true },
      }),
  );

  // Counted below the retry layer, so every HTTP attempt shows, retries included.
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
      const targetHeader = headers?.['x-amz-target'] ?? headers?.['X-Amz-Target'];
      const operation = targetHeader?.split('.').pop() ?? String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      counts[operation] = (counts[operation] ?? 0) + 1;
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'datafixRequestCounter' },
  );

  const doc = lib.DynamoDBDocumentClient.from(client, {
    marshallOptions: {
      removeUndefinedValues: true,
      // A double the engine computed beyond 2^53 is written as JavaScript prints it rather than
      // refused; exact numbers read from the table are NumberValues and keep every digit.
      allowImpreciseNumbers: true,
    },
    unmarshallOptions: { wrapNumbers: makeWrapNumbers(lib.NumberValue) },
  });

  const where = describeWhere(target);
  const tables = new TableCache((table) => client.send(new ddb.DescribeTableCommand({ TableName: table })), where);
  const ctx: DynamoContext = {
    client,
    doc,
    lib,
    NumberValue: lib.NumberValue,
    target,
    where,
    tables,
    retryBaseMs: options.retryBaseMs ?? 200,
    readRetries: options.readRetries ?? 10,
  };
  return new DynamoAdapter(ctx, counts);
}

class DynamoAdapter implements Adapter {
  readonly backend = 'dynamodb';

  constructor(
    private readonly ctx: DynamoContext,
    private readonly counts: Record<string, number>,
  ) {}

  instance(): string | undefined {
    return this.ctx.tables.instanceOf(this.ctx.target.table);
  }

  check(plan: FixPlan): Promise<void> {
    return checkPlan(plan, this.ctx.target.table, this.ctx.tables);
  }

  readPages(source: SourcePlan, options: ReadOptions): AsyncIterable<SourcePage> {
    return readPages(this.ctx, source, options);
  }

  lookup(requests: readonly LookupRequest[]): Promise<(Item | undefined | LookupRejected)[]> {
    return lookup(this.ctx, requests);
  }

  lookupMany(requests: readonly ListLookupRequest[], options: { readonly concurrency: number }): Promise<(Item[] | LookupRejected)[]> {
    return lookupMany(this.ctx, requests, options.concurrency);
  }

  count(source: SourcePlan, options: CountOptions): Promise<RecordCount | undefined> {
    return estimateCount(this.ctx, source, options);
  }

  write(requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]> {
    return write(this.ctx, requests, options);
  }

  /** DynamoDB's own rules for the comparisons of a filter (src/plan/compare.ts). */
  satisfies(op: ValueTestOp, values: readonly unknown[], stored: unknown): boolean {
    return satisfiesStrict(op, values, stored);
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }

  async close(): Promise<void> {
    // The document client only wraps this one; destroying it closes the sockets.
    this.ctx.client.destroy();
  }
}
