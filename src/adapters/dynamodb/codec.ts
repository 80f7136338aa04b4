/**
 * Value conversions between what DynamoDB stores and what the engine sees: exact numbers, sets
 * and binary survive a read → write round trip unchanged, and keys serialise to JSON cursors.
 */
import type { NumberValue as NumberValueClass } from '@aws-sdk/lib-dynamodb';
import { DatafixError } from '../../errors.js';
import { exactNumberText, toJsonSafe } from '../../plan/values.js';
import type { Item } from '../types.js';

export type NumberValueCtor = typeof NumberValueClass;

/**
 * The unmarshaller's number hook: a JS number when the decimal text survives the trip through a
 * double unchanged, otherwise the SDK's exact NumberValue, so a copied number keeps every digit.
 */
export function makeWrapNumbers(NumberValue: NumberValueCtor): (text: string) => unknown {
  return (text) => {
    const n = Number(text);
    return Number.isFinite(n) && String(n) === text ? n : NumberValue.from(text);
  };
}

function numberLike(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return exactNumberText(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Prepares an engine value for the marshaller. Exact numbers from another copy of the SDK (or a
 * bigint) become this SDK's NumberValue; a number set is rebuilt from exact texts, because the
 * marshaller picks the conversion from the set's first element and a mixed set of doubles and
 * exact numbers would otherwise fail; undefined members of maps are dropped so the value written
 * and the value compared after a failed condition are the same.
 */
export function toWritable(value: unknown, NumberValue: NumberValueCtor): unknown {
  if (value instanceof NumberValue) return value;
  if (typeof value !== 'number') {
    const exact = exactNumberText(value);
    if (exact !== undefined) return NumberValue.from(exact);
  }
  if (value instanceof Set) {
    const members = [...value];
    const texts = members.map(numberLike);
    if (members.length > 0 && texts.every((t) => t !== undefined)) {
      return new Set(texts.map((t) => NumberValue.from(t as string)));
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => toWritable(v, NumberValue));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = toWritable(v, NumberValue);
    }
    return out;
  }
  return value;
}

/** Drops undefined map members (what the marshaller does with removeUndefinedValues). */
export function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== undefined).map(withoutUndefined);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
    return out;
  }
  return value;
}

/** The primary-key attributes of an item, in key-schema order. */
export function pickKey(item: Item, keyNames: readonly string[]): Item {
  const key: Item = {};
  for (const name of keyNames) key[name] = item[name];
  return key;
}

/** DynamoDB's canonical form of a plain decimal: no leading/trailing zeros, no negative zero. */
function canonicalDecimal(text: string): string {
  const m = /^(-?)0*(\d*?)(?:\.(\d*?)0*)?$/.exec(text);
  if (!m) return text;
  const int = m[2] || '0';
  const frac = m[3] ?? '';
  const body = frac ? `${int}.${frac}` : int;
  return body === '0' ? '0' : `${m[1]}${body}`;
}

function scalarText(value: unknown): string {
  const n = numberLike(value);
  if (n !== undefined) return `N:${canonicalDecimal(n)}`;
  if (typeof value === 'string') return `S:${value}`;
  if (value instanceof Uint8Array) return `B:${Buffer.from(value).toString('base64')}`;
  return `?:${JSON.stringify(toJsonSafe(value))}`;
}

/**
 * A stable text for a table and key, independent of attribute order and of whether a number is
 * held as a double or an exact NumberValue, so duplicate lookups are fetched once.
 */
export function stableKey(table: string, key: Item): string {
  const parts = Object.keys(key)
    .sort()
    .map((name) => [name, scalarText(key[name])]);
  return JSON.stringify([table, parts]);
}

/** A key (LastEvaluatedKey) as JSON-safe data: `{ "$number": text }` for exact numbers, `{ "$binary": base64 }`. */
export function encodeKey(key: Item): Record<string, unknown> {
  return toJsonSafe(key) as Record<string, unknown>;
}

function badCursor(detail: string): DatafixError {
  return new DatafixError(
    'usage',
    'DF409',
    `the resume cursor is not one this DynamoDB source produced (${detail}); resume with the cursor of the same fix and segments, or start without one`,
  );
}

/** The inverse of `encodeKey`, for ExclusiveStartKey. */
export function decodeKey(value: unknown, NumberValue: NumberValueCtor): Item {
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    throw badCursor('a key must be a non-empty object');
  }
  const key: Item = {};
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number') key[name] = v;
    else if (isPlainObject(v) && typeof v.$number === 'string') key[name] = NumberValue.from(v.$number);
    else if (isPlainObject(v) && typeof v.$binary === 'string') {
      key[name] = new Uint8Array(Buffer.from(v.$binary, 'base64'));
    } else throw badCursor(`attribute \`${name}\` is not a string, number or binary key value`);
  }
  return key;
}

export { badCursor };
