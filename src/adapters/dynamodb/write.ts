/**
 * Guarded writes: one conditional UpdateItem per record (never Put or BatchWrite, which would
 * replace whole items and cannot be conditioned per field). A failed condition is resolved by a
 * consistent re-read, never by retrying the write without its guard.
 */

import { DatafixError } from '../../errors.js';
import { deepEqual, isAbsent } from '../../plan/values.js';
import type { Item, WriteOptions, WriteRequest, WriteResult } from '../types.js';
import { toWritable, withoutUndefined } from './codec.js';
import type { DynamoContext } from './context.js';
import { absentExpression, ExpressionBuilder, equalsExpression } from './expressions.js';
import {
  environmentError,
  isConditionalFailure,
  isItemTooLarge,
  isResourceNotFound,
  isRetryable,
  isValidation,
  messageOf,
} from './failures.js';
import { keyProblem, type LimitProblem, valueProblem } from './limits.js';
import { forEachLimit } from './retry.js';

/** Applies the writes with at most `concurrency` in flight; answers in request order. */
export async function write(ctx: DynamoContext, requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]> {
  const results: WriteResult[] = new Array(requests.length);
  await forEachLimit(requests, Math.max(1, Math.floor(options.concurrency)), async (request, i) => {
    results[i] = await writeOne(ctx, request, options.resend ?? false);
  });
  return results;
}

async function writeOne(ctx: DynamoContext, request: WriteRequest, resend: boolean): Promise<WriteResult> {
  if (request.action) return putOrDelete(ctx, request, request.action, resend);
  const table = request.table ?? ctx.target.table;
  const keyNames = Object.keys(request.key);
  if (request.fields.length === 0 || keyNames.length === 0) {
    return {
      status: 'failed',
      reason: 'write_rejected',
      message: request.fields.length === 0 ? 'nothing to write' : 'the update key is empty',
    };
  }
  // Per-record limits fail this record alone, before anything is sent.
  const problem =
    keyProblem(request.key, await ctx.tables.get(table)) ??
    request.fields.reduce<LimitProblem | undefined>((found, f) => found ?? valueProblem(f.name, f.value), undefined);
  if (problem) return { status: 'failed', reason: problem.reason, message: problem.message };
  const b = new ExpressionBuilder();
  const sets: string[] = [];
  const removes: string[] = [];
  const guards: string[] = [];
  for (const field of request.fields) {
    const path = b.name(field.name);
    // No value means "absent": undo restores a field that did not exist by removing it.
    if (field.value === undefined) removes.push(path);
    else sets.push(`${path} = ${b.value(toWritable(field.value, ctx.NumberValue))}`);
    if (field.guard === 'absent' || (field.guard === 'unchanged' && isAbsent(field.before))) {
      // Exactly the state read: a missing attribute and a NULL one restore differently (REMOVE
      // or NULL), so the guard tells them apart and the before-image is what the write replaced.
      // A fill-only write that carries no before-image keeps the looser "absent or NULL".
      guards.push(
        !Object.hasOwn(field, 'before')
          ? absentExpression(path, b)
          : field.before === undefined
            ? `attribute_not_exists(${path})`
            : `attribute_type(${path}, ${b.constant('null_t', 'NULL')})`,
      );
    } else if (field.guard === 'unchanged') {
      guards.push(equalsExpression(path, toWritable(field.before, ctx.NumberValue), b));
    }
  }
  // UpdateItem creates a missing item by default; requiring a key attribute makes it update only.
  guards.push(`attribute_exists(${b.name(keyNames[0] as string)})`);

  const key = toWritable(request.key, ctx.NumberValue) as Item;
  const { UpdateCommand } = ctx.lib;
  try {
    await ctx.doc.send(
      new UpdateCommand({
        TableName: table,
        Key: key,
        UpdateExpression: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '']
          .filter(Boolean)
          .join(' '),
        ConditionExpression: guards.join(' AND '),
        ExpressionAttributeNames: b.attributeNames,
        ExpressionAttributeValues: b.attributeValues,
      }),
    );
    return { status: 'applied' };
  } catch (err) {
    if (isConditionalFailure(err)) {
      const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
      return resolveConflict(ctx, table, key, request, resend || attempts > 1);
    }
    return failure(ctx, table, err);
  }
}

/** DynamoDB's limit on one expression string (4 KB), from its service quotas. */
export const MAX_EXPRESSION_BYTES = 4096;

/**
 * A whole-item write: `delete` is a DeleteItem conditioned on every attribute of the before-image
 * (a guard that would break DynamoDB's expression limits fails the record, `delete_guard_too_large`,
 * never an unguarded delete); `create` is a PutItem conditioned on no item having the key.
 */
async function putOrDelete(ctx: DynamoContext, request: WriteRequest, action: 'delete' | 'create', resend: boolean): Promise<WriteResult> {
  const table = request.table ?? ctx.target.table;
  const keyNames = Object.keys(request.key);
  if (keyNames.length === 0) return { status: 'failed', reason: 'write_rejected', message: 'the key is empty' };
  const problem =
    keyProblem(request.key, await ctx.tables.get(table)) ??
    (action === 'create'
      ? request.fields.reduce<LimitProblem | undefined>((found, f) => found ?? valueProblem(f.name, f.value), undefined)
      : undefined);
  if (problem) return { status: 'failed', reason: problem.reason, message: problem.message };
  const b = new ExpressionBuilder();
  const key = toWritable(request.key, ctx.NumberValue) as Item;
  const keyPath = b.name(keyNames[0] as string);
  const send = async (): Promise<void> => {
    if (action === 'create') {
      const item: Item = { ...key };
      for (const f of request.fields) if (f.value !== undefined) item[f.name] = toWritable(f.value, ctx.NumberValue);
      await ctx.doc.send(
        new ctx.lib.PutCommand({
          TableName: table,
          Item: item,
          ConditionExpression: `attribute_not_exists(${keyPath})`,
          ExpressionAttributeNames: b.attributeNames,
        }),
      );
      return;
    }
    const guards = request.fields.map((f) => {
      const path = b.name(f.name);
      return f.before === undefined ? `attribute_not_exists(${path})` : equalsExpression(path, toWritable(f.before, ctx.NumberValue), b);
    });
    guards.push(`attribute_exists(${keyPath})`);
    const condition = guards.join(' AND ');
    if (Buffer.byteLength(condition) > MAX_EXPRESSION_BYTES) throw new GuardTooLarge(Buffer.byteLength(condition));
    await ctx.doc.send(
      new ctx.lib.DeleteCommand({
        TableName: table,
        Key: key,
        ConditionExpression: condition,
        ExpressionAttributeNames: b.attributeNames,
        ...(b.attributeValues ? { ExpressionAttributeValues: b.attributeValues } : {}),
      }),
    );
  };
  try {
    await send();
    return { status: 'applied' };
  } catch (err) {
    if (err instanceof GuardTooLarge) {
      return {
        status: 'failed',
        reason: 'delete_guard_too_large',
        message: `the delete's guard (every attribute of the item as read) is ${err.bytes} bytes, over DynamoDB's ${MAX_EXPRESSION_BYTES}-byte expression limit; the item was not deleted`,
      };
    }
    if (!isConditionalFailure(err)) return failure(ctx, table, err);
    const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
    const retried = resend || attempts > 1;
    let current: Item | undefined;
    try {
      const out = await ctx.doc.send(new ctx.lib.GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
      current = out.Item;
    } catch (readErr) {
      return failure(ctx, table, readErr);
    }
    // As for updates: only a request sent more than once can have been refused by its own
    // earlier landing (the item gone after our delete, or holding exactly what we created).
    if (action === 'delete') return current ? { status: 'conflict' } : retried ? { status: 'applied' } : { status: 'not_found' };
    const landed = current !== undefined && request.fields.every((f) => deepEqual(current[f.name], withoutUndefined(f.value)));
    return retried && landed ? { status: 'applied' } : { status: 'conflict' };
  }
}

class GuardTooLarge {
  constructor(readonly bytes: number) {}
}

/**
 * A guard failed: either someone else changed the item, it was deleted, or our own write landed
 * and only its acknowledgement was lost (the SDK then retried into our own guard). A consistent
 * read tells them apart.
 */
async function resolveConflict(
  ctx: DynamoContext,
  table: string,
  key: Item,
  request: WriteRequest,
  retried: boolean,
): Promise<WriteResult> {
  const { GetCommand } = ctx.lib;
  let current: Item | undefined;
  try {
    const out = await ctx.doc.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    current = out.Item;
  } catch (err) {
    return failure(ctx, table, err);
  }
  if (!current) return { status: 'not_found' };
  // Only a request sent more than once (by the SDK's retries, or requeued by the engine after
  // its outcome was lost) can have been refused by its own earlier attempt; on a first attempt, matching values were written by someone else (or an earlier
  // apply of the same plan), and claiming them as ours would let an undo revert that write.
  if (!retried) return { status: 'conflict' };
  const landed = request.fields.every((f) => deepEqual(current[f.name], withoutUndefined(f.value)));
  return landed ? { status: 'applied' } : { status: 'conflict' };
}

/**
 * One write's error as its result. What is wrong with the environment, not the record (rejected
 * or expired credentials, access denied, the table gone), would fail every record the same way:
 * it is thrown instead (DF414/DF408/DF401, exit 2) so the run stops, its journal intact, rather
 * than reading the whole table to fail each record.
 */
function failure(ctx: DynamoContext, table: string, err: unknown): WriteResult {
  const message = messageOf(err);
  // Throttles, 5xx and broken connections that outlived the SDK's retries: the engine requeues
  // them. Re-sending is safe because the write is conditional.
  if (isRetryable(err)) return { status: 'retry', message };
  const stop = isResourceNotFound(err)
    ? new DatafixError(
        'config',
        'DF401',
        `table \`${table}\` was not found at ${ctx.where} while writing: ${messageOf(err)}; check the table name`,
      )
    : environmentError(err, ctx.where, `write to table \`${table}\``);
  if (stop) throw stop;
  if (isItemTooLarge(err)) return { status: 'failed', reason: 'item_too_large', message };
  if (isValidation(err)) return { status: 'failed', reason: 'write_rejected', message };
  return { status: 'failed', reason: 'write_failed', message };
}
