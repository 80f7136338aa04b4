/**
 * Record values ↔ CEL values, keeping every number exact.
 *
 * Into CEL: an integer (a JS integer, a bigint, an exact number's integer text) becomes a CEL
 * `int` (bigint) when it fits 64 bits; a number with a fraction becomes a `double` only when a
 * double holds that decimal (its shortest text reads back the same, or it has at most 15
 * significant digits); anything else (a 38-digit DynamoDB number, 2^64) fails the record with
 * `value_not_exact` when the expression reads it. NULL and absent map members are left out, so
 * `has()` is false for them and reading one is an absent value. Sets become lists, binary stays
 * bytes.
 *
 * Out of CEL: an `int` that a double holds exactly becomes a JS number, a larger one stays a
 * bigint (written as the backend's exact integer); a timestamp becomes its RFC 3339 text, a
 * duration its seconds (`"90s"`).
 */
import { exactNumberText } from '../../plan/values.js';
import { ExprRuntimeError, MAX_LIST, MAX_STRING } from './environment.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function intInRange(n: bigint, shown: string): bigint {
  if (n < INT64_MIN || n > INT64_MAX) {
    throw new ExprRuntimeError(
      'value_not_exact',
      `${shown} does not fit a 64-bit integer; an expression cannot use it without losing digits`,
    );
  }
  return n;
}

function significantDigits(text: string): number {
  return text.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
}

/** A decimal text as a CEL number, exactly or not at all. */
function numberFromText(text: string): bigint | number {
  if (/^-?[0-9]+$/.test(text)) return intInRange(BigInt(text), text);
  const n = Number(text);
  // `1764500000123456.0` (a SQLite REAL) is the double 1764500000123456: trailing zeros of the
  // fraction say nothing a double does not hold.
  const trimmed = text.includes('.') && !/e/i.test(text) ? text.replace(/\.?0+$/, '') : text;
  if (Number.isFinite(n) && (String(n) === text || String(n) === trimmed || significantDigits(text) <= 15)) return n;
  throw new ExprRuntimeError('value_not_exact', `${text} cannot be held exactly by an expression (a double keeps 15 significant digits)`);
}

/** A record value as a CEL value; `undefined` for an absent one (null included). */
export function toCel(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case 'string':
      if (value.length > MAX_STRING)
        throw new ExprRuntimeError('expression_limit', `a value of ${value.length} characters exceeds the limit of ${MAX_STRING}`);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (Number.isInteger(value) && Number.isSafeInteger(value)) return BigInt(value);
      return value;
    case 'bigint':
      return intInRange(value, String(value));
    default:
      break;
  }
  const exact = exactNumberText(value);
  if (exact !== undefined) return numberFromText(exact);
  if (value instanceof Uint8Array) return value;
  if (depth > 64) throw new ExprRuntimeError('expression_limit', 'a value nests too deeply for an expression');
  if (Array.isArray(value) || value instanceof Set) {
    const items = [...value];
    if (items.length > MAX_LIST)
      throw new ExprRuntimeError('expression_limit', `a list of ${items.length} entries exceeds the limit of ${MAX_LIST}`);
    return items.map((v) => toCel(v, depth + 1) ?? null);
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value);
    if (entries.length > MAX_LIST)
      throw new ExprRuntimeError('expression_limit', `a map of ${entries.length} entries exceeds the limit of ${MAX_LIST}`);
    for (const [k, v] of entries) {
      const c = toCel(v, depth + 1);
      if (c !== undefined) Object.defineProperty(out, k, { value: c, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return undefined;
}

/** A lone UTF-16 surrogate: half a character, which no database stores as text. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A CEL result as a value datafix writes or compares.
 * @throws ExprRuntimeError `expression_error` for a result no database holds as written: NaN or
 *   ±Infinity (SQLite would store NULL or Inf), an `int` outside 64 bits (CEL's overflow that
 *   negation and division do not report), text cut inside a character (a lone surrogate, from
 *   `substring` or `charAt` on a character outside the Basic Multilingual Plane).
 */
export function fromCel(value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new ExprRuntimeError('expression_error', `the expression gives ${value}, which is not a number any column or attribute holds`);
  }
  if (typeof value === 'string' && LONE_SURROGATE.test(value)) {
    throw new ExprRuntimeError(
      'expression_error',
      'the expression gives text cut inside a character (positions in substring and indexOf count UTF-16 units, and this character takes two)',
    );
  }
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX)
      throw new ExprRuntimeError('expression_error', `integer overflow: ${value} does not fit 64 bits`);
    return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromCel);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), fromCel(v)]));
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  if (ctor === 'Duration') {
    const d = value as { seconds: bigint; nanos: number };
    return d.nanos === 0 ? `${d.seconds}s` : `${Number(d.seconds) + d.nanos / 1e9}s`;
  }
  if (ctor === 'UnsignedInt') {
    const u = BigInt(String((value as { value?: unknown }).value ?? value));
    return Number.isSafeInteger(Number(u)) ? Number(u) : u;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, k, { value: fromCel(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
