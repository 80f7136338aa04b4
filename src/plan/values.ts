/**
 * Value semantics shared by the engine and the adapters, so that "missing", "equal" and the
 * printed form of a value mean the same thing everywhere.
 */

/**
 * Deepest nesting of a value datafix will write. DynamoDB allows 32 levels; beyond that a value
 * is more likely an attack or a bug than data, and a record holding one fails on its own.
 */
export const MAX_VALUE_DEPTH = 32;

/** Absent: undefined or null. Fill-only writes target absent fields only. */
export function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

/** Missing: absent or the empty string (conditions `missing`/`exists`, extract fallbacks). */
export function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/**
 * An exact number that JS cannot hold as a double (DynamoDB returns numbers as decimal text).
 * Recognised by shape so that neither side has to import the AWS SDK's NumberValue class.
 */
export function exactNumberText(value: unknown): string | undefined {
  if (typeof value === 'bigint') return value.toString();
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    ['NumberValue', 'ExactNumber'].includes((value as { constructor?: { name?: string } }).constructor?.name ?? '') &&
    typeof (value as { value?: unknown }).value === 'string'
  ) {
    return (value as { value: string }).value;
  }
  return undefined;
}

function exactInDouble(text: string): boolean {
  const digits = text.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Number.isFinite(Number(text)) && digits.length <= 15;
}

function numberText(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  return exactNumberText(value);
}

/** Structural equality over the value kinds datafix reads: JSON values, Set, Uint8Array, exact numbers. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const na = numberText(a);
  const nb = numberText(b);
  if (na !== undefined || nb !== undefined) {
    if (na === undefined || nb === undefined) return false;
    // Different texts are the same number only when a double holds both exactly ("1.0" and 1).
    return na === nb || (exactInDouble(na) && exactInDouble(nb) && Number(na) === Number(nb));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    return a.every((byte, i) => byte === b[i]);
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false;
    for (const x of a) {
      if (!b.has(x) && ![...b].some((y) => deepEqual(x, y))) return false;
    }
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * Converts a value to JSON-safe data for `--json`, plans and journals: sets become
 * `{ "$set": [...] }`, binary `{ "$binary": base64 }`, exact numbers `{ "$number": "text" }`.
 * A map that would read back as one of these tags (exactly one key, starting with `$`, such as
 * a DynamoDB map `{ "$number": "5" }`) is wrapped as `{ "$map": {...} }`, so it reads back as
 * the map it was and not as a number, set, binary or absent field.
 */
export function toJsonSafe(value: unknown): unknown {
  const exact = exactNumberText(value);
  if (exact !== undefined) return { $number: exact };
  // JSON has no -0, NaN or ±Infinity (JSON.stringify would write 0 and null): they are tagged too.
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0)))
    return { $number: Object.is(value, -0) ? '-0' : String(value) };
  if (value instanceof Uint8Array) return { $binary: Buffer.from(value).toString('base64') };
  if (value instanceof Set) return { $set: [...value].map(toJsonSafe) };
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonSafe(v);
    return looksTagged(out) ? { $map: out } : out;
  }
  return value;
}

/** Whether a plain object has the shape of a tag (`$set`, `$number`, `$absent`, …): one `$` key. */
function looksTagged(value: object): boolean {
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] as string).startsWith('$');
}

/** Whether a value nests deeper than `max` levels; iterative, so no depth can overflow the stack. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array || exactNumberText(v) !== undefined) continue;
    if (depth >= max) return true;
    const children = v instanceof Set ? [...v] : Array.isArray(v) ? v : Object.values(v);
    for (const c of children) stack.push([c, depth + 1]);
  }
  return false;
}

/** A short, single-line rendering for diffs and log lines. */
export function formatValue(value: unknown, maxLength = 120): string {
  if (value === undefined) return '(absent)';
  if (nestedDeeperThan(value, MAX_VALUE_DEPTH)) return '(a value nested too deeply to show)';
  const text = displayJson(value);
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}

/**
 * JSON text for a person: numbers as their exact text (a SQLite REAL 7.0 as `7.0`, 40 digits in
 * full) rather than the `{"$number": …}` tag the journal needs; text quoted, so `"7"` and `7` stay
 * apart. Sets and binary keep their tags (`{"$set": […]}`, `{"$binary": …}`).
 */
function displayJson(value: unknown): string {
  const exact = exactNumberText(value);
  if (exact !== undefined) return exact;
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : Number.isFinite(value) ? JSON.stringify(value) : String(value);
  if (Array.isArray(value)) return `[${value.map(displayJson).join(',')}]`;
  if (value instanceof Set || value instanceof Uint8Array) return JSON.stringify(toJsonSafe(value)) ?? String(value);
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${displayJson(v)}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? String(value);
}

/**
 * The inverse of `toJsonSafe`: `{ "$set": [...] }`, `{ "$binary": base64 }` and
 * `{ "$number": "text" }` become a Set, bytes and an exact number; `{ "$map": {...} }` is that map,
 * its own keys taken as they are. A number text that is exactly
 * how JavaScript prints a double (and `-0`, `NaN`, `±Infinity`) becomes a plain number; any other
 * text stays a tagged object recognised by `exactNumberText`, so `7.0` (a SQLite REAL) or
 * 40 digits (a DynamoDB number) are written back with their own text, not as the double.
 */
export function fromJsonSafe(value: unknown, exactNumber: (text: string) => unknown = (t) => new ExactNumber(t)): unknown {
  if (Array.isArray(value)) return value.map((v) => fromJsonSafe(v, exactNumber));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  if (entries.length === 1) {
    const [tag, inner] = entries[0] as [string, unknown];
    if (tag === '$set' && Array.isArray(inner)) return new Set(inner.map((v) => fromJsonSafe(v, exactNumber)));
    if (tag === '$binary' && typeof inner === 'string') return new Uint8Array(Buffer.from(inner, 'base64'));
    if (tag === '$number' && typeof inner === 'string') return plainNumberText(inner) ? Number(inner) : exactNumber(inner);
    if (tag === '$map' && inner !== null && typeof inner === 'object' && !Array.isArray(inner))
      return Object.fromEntries(Object.entries(inner).map(([k, v]) => [k, fromJsonSafe(v, exactNumber)]));
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, fromJsonSafe(v, exactNumber)]));
}

/**
 * Whether a double prints as exactly this text (`-0` and the non-finite values included). An
 * integer beyond 2^53 is never plain, even one a double happens to hold (1e20): it stays an exact
 * number, so a plan applies it as the run would write it.
 */
function plainNumberText(text: string): boolean {
  if (text === '-0' || text === 'NaN' || text === 'Infinity' || text === '-Infinity') return true;
  if (/^-?[0-9]+$/.test(text) && !Number.isSafeInteger(Number(text))) return false;
  return String(Number(text)) === text;
}

/** An exact decimal that is not a double; shaped like the AWS SDK's NumberValue so both read alike. */
export class ExactNumber {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}
