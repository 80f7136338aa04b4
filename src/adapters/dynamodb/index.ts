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
  /**
   * The command's stop signal (Ctrl-C, SIGTERM, SIGHUP). Once it aborts, requests still waiting
   * for an answer after `stopGraceMs` are cut off (see `cutOffOnStop`), and a write among them
   * makes `write` throw `RequestCutOff` instead of reporting outcomes it does not know.
   */
  readonly stopSignal?: AbortSignal;
  /** How long each request may still wait for its answer after the stop signal (default 1000 ms). */
  readonly stopGraceMs?: number;
}

/** What a write cut off by the stop signal is reported as: its outcome is unknown. */
export class RequestCutOff extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('the request got no answer before the interrupt and was cut off; whether it reached DynamoDB is unknown');
  }
}

/** The part of the SDK's HTTP handler datafix wraps (`NodeHttpHandler`). */
interface HttpHandlerLike {
  handle(request: unknown, options?: { abortSignal?: AbortSignal } & Record<string, unknown>): Promise<unknown>;
  destroy?(): void;
  updateHttpClientConfig?(key: never, value: never): void;
  httpHandlerConfigs?(): unknown;
}

/**
 * After `stop` aborted, cuts off each request of the client that has waited `graceMs` for its
 * answer (counted from the stop, or from its start when sent later), by aborting it in the SDK's
 * HTTP handler: the SDK's own timeouts (5 s to connect, 60 s per attempt, six attempts) would
 * otherwise hold Ctrl-C for minutes when an endpoint accepts connections and never answers. A
 * slow endpoint that still answers lets the writes in flight finish. An aborted request is not
 * retried, and once one was cut off every later request fails at once. Returns the signal that
 * says a cut-off happened.
 */
function cutOffOnStop(config: { requestHandler: unknown }, stop: AbortSignal | undefined, graceMs: number): AbortSignal {
  const cutOff = new AbortController();
  if (!stop) return cutOff.signal;
  const inner = config.requestHandler as HttpHandlerLike;
  /** Starts the grace of each request in flight; one listener on `stop` for all of them. */
  const inFlight = new Set<() => void>();
  stop.addEventListener('abort', () => {
    for (const arm of inFlight) arm();
  });
  const wrapped: HttpHandlerLike = {
    handle: (request, options = {}) => {
      const own = new AbortController();
      if (cutOff.signal.aborted) own.abort();
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        timer ??= setTimeout(() => {
          cutOff.abort();
          own.abort();
        }, graceMs).unref();
      };
      // The caller's own signal (a read's) still aborts the request, as it did unwrapped.
      const outer = options.abortSignal;
      const onOuter = () => own.abort();
      if (outer?.aborted) own.abort();
      else outer?.addEventListener('abort', onOuter, { once: true });
      if (stop.aborted) arm();
      else inFlight.add(arm);
      return inner.handle(request, { ...options, abortSignal: own.signal }).finally(() => {
        clearTimeout(timer);
        inFlight.delete(arm);
        outer?.removeEventListener('abort', onOuter);
      });
    },
    destroy: () => inner.destroy?.(),
    updateHttpClientConfig: (key, value) => inner.updateHttpClientConfig?.(key, value),
    httpHandlerConfigs: () => inner.httpHandlerConfigs?.() ?? {},
  };
  // The SDK reads its handler from the client's config at each send.
  config.requestHandler = wrapped;
  return cutOff.signal;
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

  const cutOff = cutOffOnStop(client.config as { requestHandler: unknown }, options.stopSignal, options.stopGraceMs ?? 1000);

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
  return new DynamoAdapter(ctx, counts, cutOff);
}

class DynamoAdapter implements Adapter {
  readonly backend = 'dynamodb';

  constructor(
    private readonly ctx: DynamoContext,
    private readonly counts: Record<string, number>,
    private readonly cutOff: AbortSignal,
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

  async write(requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]> {
    const results = await write(this.ctx, requests, options);
    // Writes cut off by the stop signal have no outcome: none of this call's results is reported
    // as made or failed. The caller stops; the journal keeps them as writes of unknown outcome.
    if (this.cutOff.aborted) throw new RequestCutOff();
    return results;
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
