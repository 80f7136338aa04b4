/**
 * DynamoDB's per-record limits, checked before a request is sent, so that one record's data fails
 * that record alone with a named reason instead of failing a whole BatchGetItem (DynamoDB rejects
 * the entire batch with a ValidationException for one bad key) or stopping the run.
 *
 * Sources (AWS documentation):
 * - Service, account, and table quotas, "Attributes" and "Data types":
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
 *   partition key value 1 to 2048 bytes, sort key value 1 to 1024 bytes, item 400 KB,
 *   nested attributes up to 32 levels deep.
 * - Supported data types and naming rules:
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
 *   numbers: up to 38 digits of precision, positive 1E-130 to 9.9999999999999999999999999999999999999E+125,
 *   negative -9.9999999999999999999999999999999999999E+125 to -1E-130; key attributes are S, N or
 *   B only, and a string or binary key value cannot be empty; sets cannot be empty.
 */
import { exactNumberText } from '../../plan/values.js';
import type { Item } from '../types.js';

/** A per-record limit a value breaks: the record fails with `reason`, nothing is sent. */
export interface LimitProblem {
  readonly reason: 'key_invalid' | 'key_too_large' | 'number_out_of_range' | 'value_invalid';
  readonly message: string;
}

/** Largest partition key value, in bytes (UTF-8 for strings). */
export const MAX_PARTITION_KEY_BYTES = 2048;
/** Largest sort key value, in bytes (UTF-8 for strings). */
export const MAX_SORT_KEY_BYTES = 1024;
/** Most significant digits a DynamoDB number holds. */
export const MAX_NUMBER_DIGITS = 38;

/** The key schema a key is checked against: attribute names and their declared types. */
export interface KeyShape {
  readonly partitionKey: string;
  readonly sortKey?: string;
  /** Declared type per key attribute: `S`, `N` or `B` (from the table's AttributeDefinitions). */
  readonly keyTypes: Readonly<Record<string, string>>;
}

/**
 * Why DynamoDB would reject a number, or undefined when it can be stored exactly: more than 38
 * significant digits, a magnitude outside 1E-130 .. 9.99…E+125, or not a finite number at all.
 * `text` is the decimal text (as JavaScript prints a number, or an exact number's own text).
 */
export function numberProblem(text: string): string | undefined {
  const m = /^-?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return `${text} is not a finite number`;
  const all = `${m[1]}${m[2] ?? ''}`;
  const significant = all.replace(/^0+/, '').replace(/0+$/, '');
  if (significant.length === 0) return undefined; // zero
  if (significant.length > MAX_NUMBER_DIGITS) {
    return `${text} has ${significant.length} significant digits; DynamoDB keeps at most ${MAX_NUMBER_DIGITS}`;
  }
  // Decimal exponent of the leading significant digit: value = 0.d1d2… × 10^(adjusted + 1).
  const leadingZeros = all.length - all.replace(/^0+/, '').length;
  const adjusted = (m[1] ?? '').length - leadingZeros - 1 + Number(m[3] ?? 0);
  if (adjusted > 125 || adjusted < -130) {
    return `${text} is outside DynamoDB's number range (1E-130 to 9.9999999999999999999999999999999999999E+125 in magnitude)`;
  }
  return undefined;
}

function numberTextOf(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return exactNumberText(value);
}

function typeOf(value: unknown): string {
  if (typeof value === 'string') return 'S';
  if (numberTextOf(value) !== undefined) return 'N';
  if (value instanceof Uint8Array) return 'B';
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean') return 'BOOL';
  if (value instanceof Set) return 'a set';
  return Array.isArray(value) ? 'L' : 'M';
}

/**
 * Why DynamoDB would reject `key` for a table with this key schema, or undefined when it is a
 * valid key: an attribute missing or extra, a type other than the declared S/N/B, an empty string
 * or binary, a partition key over 2048 bytes or a sort key over 1024 bytes, a number DynamoDB
 * cannot hold.
 */
export function keyProblem(key: Item, shape: KeyShape): LimitProblem | undefined {
  const names = shape.sortKey === undefined ? [shape.partitionKey] : [shape.partitionKey, shape.sortKey];
  const extra = Object.keys(key).filter((k) => !names.includes(k));
  if (extra.length > 0) {
    return { reason: 'key_invalid', message: `the key has ${extra.map((e) => `\`${e}\``).join(', ')}, which the key schema lacks` };
  }
  for (const name of names) {
    const value = key[name];
    const declared = shape.keyTypes[name] ?? 'S';
    const actual = typeOf(value);
    if (actual === 'NULL') return { reason: 'key_invalid', message: `key attribute \`${name}\` has no value` };
    if (actual !== declared) {
      return { reason: 'key_invalid', message: `key attribute \`${name}\` is ${actual} but the table declares it ${declared}` };
    }
    const limit = name === shape.partitionKey ? MAX_PARTITION_KEY_BYTES : MAX_SORT_KEY_BYTES;
    const bytes = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value instanceof Uint8Array ? value.byteLength : undefined;
    if (bytes === 0) return { reason: 'key_invalid', message: `key attribute \`${name}\` is empty; DynamoDB key values cannot be empty` };
    if (bytes !== undefined && bytes > limit) {
      return {
        reason: 'key_too_large',
        message: `key attribute \`${name}\` is ${bytes} bytes; DynamoDB allows at most ${limit} for a ${name === shape.partitionKey ? 'partition' : 'sort'} key`,
      };
    }
    if (actual === 'N') {
      const why = numberProblem(numberTextOf(value) as string);
      if (why) return { reason: 'key_invalid', message: `key attribute \`${name}\`: ${why}` };
    }
  }
  return undefined;
}

/**
 * Why DynamoDB would reject an attribute value datafix is about to write, or undefined: a number
 * it cannot hold (NaN, ±Infinity, over 38 digits, out of range) or an empty set, anywhere inside
 * the value. Iterative, so no nesting can overflow the stack.
 */
export function valueProblem(name: string, value: unknown): LimitProblem | undefined {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    const text = numberTextOf(v);
    if (text !== undefined) {
      const why = numberProblem(text);
      if (why) return { reason: 'number_out_of_range', message: `${name}: ${why}` };
      continue;
    }
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) continue;
    if (v instanceof Set) {
      if (v.size === 0) return { reason: 'value_invalid', message: `${name}: an empty set; DynamoDB sets cannot be empty` };
      stack.push(...v);
    } else stack.push(...(Array.isArray(v) ? v : Object.values(v)));
  }
  return undefined;
}
