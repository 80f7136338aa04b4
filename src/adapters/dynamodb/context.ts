/** What the reader, lookups and writes share: the clients, the loaded SDK modules and settings. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DatafixError } from '../../errors.js';
import type { TargetPlan } from '../../plan/types.js';
import type { NumberValueCtor } from './codec.js';
import {
  environmentError,
  errorName,
  isAbort,
  isResourceNotFound,
  isRetryable,
  isServerError,
  isThrottle,
  isValidation,
  messageOf,
} from './failures.js';
import { backoffMs, sleep } from './retry.js';
import type { TableCache } from './schema.js';

export type DynamoTarget = Extract<TargetPlan, { backend: 'dynamodb' }>;
export type LibDynamo = typeof import('@aws-sdk/lib-dynamodb');

export interface DynamoContext {
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  readonly lib: LibDynamo;
  readonly NumberValue: NumberValueCtor;
  readonly target: DynamoTarget;
  /** "DynamoDB endpoint … (region …)", for messages. */
  readonly where: string;
  readonly tables: TableCache;
  /** Base of this adapter's own backoff (reads past the SDK's retries, unprocessed keys). */
  readonly retryBaseMs: number;
  /** Extra tries of a throttled read after the SDK's own retries are used up. */
  readonly readRetries: number;
}

/** Longest single wait of the adapter's own backoff. */
export const MAX_BACKOFF_MS = 10_000;

/**
 * Sends a read, and when it is still throttled (or hit a 5xx / dropped connection) after the
 * SDK's retries, waits with backoff and jitter and sends the same request again, a bounded number
 * of times. Reads are idempotent, so repeating one is always safe. Other failures become
 * DatafixErrors where they describe the environment; an abort is passed through untouched.
 */
export async function sendRead<T>(ctx: DynamoContext, operation: string, send: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (isAbort(err) || signal?.aborted) throw err;
      if (isRetryable(err) && attempt < ctx.readRetries) {
        if (!(await sleep(backoffMs(attempt, ctx.retryBaseMs, MAX_BACKOFF_MS), signal))) throw err;
        continue;
      }
      throw readError(ctx, operation, err, attempt);
    }
  }
}

function readError(ctx: DynamoContext, operation: string, err: unknown, retries: number): unknown {
  if (isThrottle(err)) {
    return new DatafixError(
      'connection',
      'DF412',
      `${operation} on table \`${ctx.target.table}\` was still throttled after ${retries} extra retries at ${ctx.where}; lower run.concurrency/pageSize or raise the table's capacity, then resume`,
    );
  }
  // Still 5xx after every retry: the service (or a gateway before it) is failing for now. The
  // same advice as throttling holds: wait, then resume; a raw SDK error would read as a bug.
  if (isServerError(err)) {
    return new DatafixError(
      'connection',
      'DF412',
      `${operation} on table \`${ctx.target.table}\` still failed with a server error after ${retries} extra retries at ${ctx.where} (${errorName(err) || 'HTTP 5xx'}: ${messageOf(err)}); DynamoDB or the endpoint is failing for now: retry later, then resume`,
    );
  }
  if (isResourceNotFound(err)) {
    return new DatafixError('config', 'DF401', `${operation} failed at ${ctx.where}: ${messageOf(err)}; check the table and index names`);
  }
  if (isValidation(err)) {
    return new DatafixError(
      'config',
      'DF407',
      `DynamoDB rejected the ${operation} on table \`${ctx.target.table}\`: ${messageOf(err)}; check the source and lookups against the table`,
    );
  }
  return environmentError(err, ctx.where, operation) ?? err;
}
