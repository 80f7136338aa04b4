/**
 * The comparisons of conditions (`lt` … `type`) with DynamoDB's meaning, on values as datafix
 * reads them: the engine's default for an adapter without its own `satisfies`, and the DynamoDB
 * adapter's. DynamoDB's rules (Developer Guide, "Comparison operator and function reference"):
 * values of different types never compare (the test is false, whatever the operator); strings
 * order by their UTF-8 bytes, binary by unsigned bytes, numbers by value, exactly (up to 38
 * digits: never through a double); `begins_with` holds for strings only (and binary, which a
 * spec cannot write); `contains` is a substring of a string, a member of a set, or an element of
 * a list; a missing attribute satisfies nothing (but the `type` test's `null` needs a present NULL).
 */
import type { TypeName, ValueTestOp } from './types.js';
import { exactNumberText } from './values.js';

/** DynamoDB's attribute type of a value read, or undefined when the attribute is missing. */
export function attributeType(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (value === null) return 'NULL';
  if (typeof value === 'string') return 'S';
  if (typeof value === 'boolean') return 'BOOL';
  if (numberText(value) !== undefined) return 'N';
  if (value instanceof Uint8Array) return 'B';
  if (value instanceof Set) {
    const first = value.values().next().value;
    return typeof first === 'string' ? 'SS' : first instanceof Uint8Array ? 'BS' : 'NS';
  }
  if (Array.isArray(value)) return 'L';
  return typeof value === 'object' ? 'M' : undefined;
}

/** DynamoDB's attribute_type name for each backend-neutral type name. */
export const DYNAMODB_TYPES: Readonly<Partial<Record<TypeName, string>>> = {
  string: 'S',
  number: 'N',
  binary: 'B',
  boolean: 'BOOL',
  null: 'NULL',
  map: 'M',
  list: 'L',
  stringSet: 'SS',
  numberSet: 'NS',
  binarySet: 'BS',
};

function numberText(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  return exactNumberText(value);
}

/** A decimal text as sign, significant digits and exponent: value = ±digits × 10^exp. */
function decimal(text: string): { sign: number; digits: string; exp: number } | undefined {
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(text.trim());
  if (!m || `${m[2]}${m[3] ?? ''}` === '') return undefined;
  let digits = `${m[2]}${m[3] ?? ''}`.replace(/^0+/, '');
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  const zeros = /0+$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - zeros);
  exp += zeros;
  return { sign: digits === '' ? 0 : m[1] === '-' ? -1 : 1, digits, exp };
}

/** Compares two decimal texts exactly: negative, zero or positive as a < b, a = b, a > b. */
export function compareDecimal(a: string, b: string): number {
  const x = decimal(a);
  const y = decimal(b);
  if (!x || !y) return Number.NaN;
  if (x.sign !== y.sign) return x.sign - y.sign;
  if (x.sign === 0) return 0;
  // Same sign: compare magnitudes by the position of the leading digit, then digit by digit.
  const magnitude = x.digits.length + x.exp - (y.digits.length + y.exp);
  let cmp = magnitude;
  if (cmp === 0) {
    const width = Math.max(x.digits.length, y.digits.length);
    const [dx, dy] = [x.digits.padEnd(width, '0'), y.digits.padEnd(width, '0')];
    cmp = dx < dy ? -1 : dx > dy ? 1 : 0;
  }
  return x.sign * Math.sign(cmp);
}

/**
 * Orders two values of one DynamoDB type among S, N and B; undefined when they do not compare
 * (different types, or a type without an order).
 */
export function compareValues(a: unknown, b: unknown): number | undefined {
  const [ta, tb] = [attributeType(a), attributeType(b)];
  if (ta !== tb) return undefined;
  if (ta === 'S') return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string));
  if (ta === 'B') return Buffer.compare(a as Uint8Array, b as Uint8Array);
  if (ta === 'N') {
    const cmp = compareDecimal(numberText(a) as string, numberText(b) as string);
    return Number.isNaN(cmp) ? undefined : cmp;
  }
  return undefined;
}

/** Equality as DynamoDB's `=` on scalars: one type, and equal (numbers exactly). */
function sameScalar(a: unknown, b: unknown): boolean {
  const t = attributeType(a);
  if (t !== attributeType(b)) return false;
  if (t === 'BOOL' || t === 'NULL') return a === b;
  return compareValues(a, b) === 0;
}

/**
 * Whether `stored` satisfies comparison `op` with `values` by DynamoDB's rules (see the module
 * comment). `values` are the compiled operands: one for the comparisons, `beginsWith` and
 * `contains`, `[low, high]` for `between`, the candidates for `in`, a type name for `type`.
 */
export function satisfiesStrict(op: ValueTestOp, values: readonly unknown[], stored: unknown): boolean {
  const [first, second] = values;
  const cmp = (v: unknown) => compareValues(stored, v);
  switch (op) {
    case 'lt':
      return (cmp(first) ?? 0) < 0;
    case 'lte':
      return cmp(first) !== undefined && (cmp(first) as number) <= 0;
    case 'gt':
      return (cmp(first) ?? 0) > 0;
    case 'gte':
      return cmp(first) !== undefined && (cmp(first) as number) >= 0;
    case 'between': {
      const [lo, hi] = [cmp(first), cmp(second)];
      return lo !== undefined && hi !== undefined && lo >= 0 && hi <= 0;
    }
    case 'beginsWith':
      return typeof stored === 'string' && typeof first === 'string' && stored.startsWith(first);
    case 'contains': {
      if (typeof stored === 'string') return typeof first === 'string' && stored.includes(first);
      if (stored instanceof Set || Array.isArray(stored)) return [...stored].some((member) => sameScalar(member, first));
      return false;
    }
    case 'in':
      return values.some((v) => sameScalar(stored, v));
    case 'type':
      return stored !== undefined && attributeType(stored) === DYNAMODB_TYPES[first as TypeName];
  }
}
