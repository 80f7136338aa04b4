/** Extraction of values from JSON text or structured fields with the plan's checked JSONPaths. */
import { JSONPath } from 'jsonpath-plus';
import { isSafeNumber, parse as parseLossless } from 'lossless-json';
import { EXPR_MISSING, ExprRuntimeError, evaluateExpression } from '../language/expr/index.js';
import { type JsonPathSegment, jsonPathSegments } from '../language/jsonpath.js';
import type { ExtractPlan } from '../plan/types.js';
import { ExactNumber, isMissing } from '../plan/values.js';
import { type Context, resolveRef } from './context.js';

/**
 * A record's extract that failed: `reason` is the record's failure reason, `message` says why.
 * An outcome of the data, not a fault of datafix: it carries no stack trace, which would cost
 * more than the rest of the record's work where many rows fail (invalid JSON in a column).
 */
export class ExtractFailure extends Error {
  readonly reason: 'invalid_json' | 'extract_failed' | 'expression_error' | 'expression_limit' | 'value_not_exact';
  constructor(reason: ExtractFailure['reason'], message: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.reason = reason;
  }
}

/** An extract with its JSONPaths parsed once, not once per record. */
export interface CompiledExtract {
  readonly plan: ExtractPlan;
  readonly paths: readonly string[];
  /**
   * For paths of names, [n] and [*] only (most are): their steps, walked here so that every
   * name is read literally as written (jsonpath-plus splits `['a,b']` and reads `['*']` as a
   * wildcard). Undefined where a path needs jsonpath-plus (`..`, slices).
   */
  readonly walks: readonly (readonly JsonPathSegment[] | undefined)[];
  /** Per path: its walk selects at most one value (names and [n] only, no [*]). */
  readonly single: readonly boolean[];
}

export function prepareExtract(plan: ExtractPlan): CompiledExtract {
  const walks = plan.paths.map((p) => {
    const segments = jsonPathSegments(p);
    return segments.every((seg) => seg.kind === 'name' || seg.kind === 'index' || seg.kind === 'wildcard') ? segments : undefined;
  });
  const single = walks.map((w) => w?.every((seg) => seg.kind !== 'wildcard') ?? false);
  return { plan, paths: plan.paths, walks, single };
}

/** What a step selects where it selects nothing (a value can be `undefined` only in a structure, never in JSON). */
const NOTHING = Symbol('nothing');

/**
 * The value one name or `[n]` step selects in `value`, through own properties, or NOTHING.
 * `[n]` and `.n` are positions in a list; a quoted name (`['0']`) is not, and `[n]` on an object
 * selects nothing (RFC 9535, 2.3.3 Index Selector).
 */
function selectStep(value: unknown, seg: JsonPathSegment): unknown {
  if (value === null || typeof value !== 'object' || value instanceof ExactNumber) return NOTHING;
  if (Array.isArray(value)) return seg.kind === 'index' && seg.index < value.length ? value[seg.index] : NOTHING;
  return seg.kind === 'name' && Object.hasOwn(value, seg.name) ? (value as Record<string, unknown>)[seg.name] : NOTHING;
}

/**
 * The one match of a path of names and [n], or undefined: `walk`'s selection without a list per
 * step, which most extracts (`$.a[0].b`) are run through for every record.
 */
function walkOne(input: unknown, segments: readonly JsonPathSegment[]): unknown {
  let value = input;
  for (const seg of segments) {
    value = selectStep(value, seg);
    if (value === NOTHING) return undefined;
  }
  return value;
}

/** Every match of a path of names, [n] and [*], in document order, through own properties. */
function walk(input: unknown, segments: readonly JsonPathSegment[]): unknown[] {
  let current: unknown[] = [input];
  for (const seg of segments) {
    const next: unknown[] = [];
    for (const value of current) {
      if (seg.kind !== 'wildcard') {
        const selected = selectStep(value, seg);
        if (selected !== NOTHING) next.push(selected);
      } else if (value !== null && typeof value === 'object' && !(value instanceof ExactNumber)) {
        next.push(...(Array.isArray(value) ? value : Object.values(value)));
      }
    }
    current = next;
  }
  return current;
}

/**
 * Whether JSON text may hold a number a double cannot hold exactly: a number token (outside
 * strings) with 16 or more digits, or with an exponent of three digits or more. Text without
 * one parses with JSON.parse, which gives the same values several times faster than the exact
 * parser. Conservative: text it cannot follow (an unterminated string) answers true, and the
 * exact parser then says what is wrong with it. A scan that skips strings with `indexOf` cost
 * a third of the regular expression that looked for such numbers at every `:`, `[` and `,`
 * (1.6 KB responses: 0.6 µs against 1.5 µs a row, bench/).
 */
export function mayHoldInexactNumber(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // The closing quote: the next one not escaped (preceded by an even number of backslashes).
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end === -1) return true;
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 92 /* \ */) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end + 1;
    } else if ((c >= 48 && c <= 57) || c === 45 /* - */) {
      let digits = 0;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d >= 48 && d <= 57) digits++;
        else if (d === 101 || d === 69 /* e E */) {
          let e = i + 1;
          if (text.charCodeAt(e) === 43 || text.charCodeAt(e) === 45) e++;
          let exponentDigits = 0;
          for (; e < n && text.charCodeAt(e) >= 48 && text.charCodeAt(e) <= 57; e++) exponentDigits++;
          if (exponentDigits >= 3) return true;
          i = e;
          break;
        } else if (d !== 46 /* . */ && d !== 45) break;
      }
      if (digits >= 16) return true;
    } else i++;
  }
  return false;
}

/**
 * Parses JSON text so that every number keeps its value: one a double holds exactly stays a
 * number; any other (an id of 19 digits, 1e400) becomes an `ExactNumber` with its text, which
 * the adapters write exactly or fail with `value_not_exact` (lossless-json; JSON.parse would
 * round 1091482500479000001 to 1091482500479000064 without a word).
 * @throws SyntaxError for text that is not JSON, including an object with a duplicate key;
 *   RangeError when nested deeper than the parser's stack.
 */
export function parseJsonExactly(text: string): unknown {
  if (!mayHoldInexactNumber(text)) return JSON.parse(text);
  return parseLossless(text, null, (literal) => (isSafeNumber(literal) ? Number(literal) : new ExactNumber(literal)));
}

/**
 * The extract's value for this record: the first match of its paths, then its `then`
 * expression applied (with the match as `value`; null when nothing matched, so `then` can give
 * a default). @throws ExtractFailure
 */
export function runExtract(ex: CompiledExtract, ctx: Context): unknown {
  const found = extractValue(ex, ctx);
  const then = ex.plan.then;
  if (!then) return found;
  const local = new Map(ctx);
  local.set('value', found === undefined ? null : found);
  try {
    const v = evaluateExpression(then, local, new Set(then.records ?? []));
    return v === EXPR_MISSING ? undefined : v;
  } catch (err) {
    if (!(err instanceof ExprRuntimeError)) throw err;
    // Nothing matched and `then` did not handle the null: the extract is missing, as without `then`.
    if (found === undefined && err.reason === 'expression_error') return undefined;
    throw new ExtractFailure(err.reason, `${ex.plan.name}.then: ${err.message}`);
  }
}

function extractValue(ex: CompiledExtract, ctx: Context): unknown {
  const input = resolveRef(ctx, ex.plan.from);
  if (isMissing(input)) return undefined;
  if (ex.plan.parse !== 'json') return firstMatch(ex, input);
  if (typeof input !== 'string') {
    throw new ExtractFailure('invalid_json', `${ex.plan.from.text} is not JSON text`);
  }
  // JSON.parse first, the exact parser only when the match holds a number and the text may hold
  // one a double cannot: both parsers give the same strings, booleans, nulls and shapes, so a
  // match without numbers is the same either way, and most records skip the slower parser and
  // the scan of their text.
  const found = firstMatch(ex, parsedJson(ex, input, JSON.parse));
  if (!holdsNumber(found) || !mayHoldInexactNumber(input)) return found;
  return firstMatch(ex, parsedJson(ex, input, parseJsonExactly));
}

/** `text` parsed by `parse`, or the record's `invalid_json` failure. @throws ExtractFailure */
function parsedJson(ex: CompiledExtract, text: string, parse: (text: string) => unknown): unknown {
  try {
    return parse(text);
  } catch (err) {
    // Deeply nested JSON overflows the exact parser's stack: as unusable as malformed JSON.
    const why = err instanceof RangeError ? 'nested too deeply' : 'not valid JSON';
    throw new ExtractFailure('invalid_json', `${ex.plan.from.text} is ${why}`);
  }
}

/** Whether `value` is a number or holds one at any depth (iterative: documents may nest 100 000 deep). */
function holdsNumber(value: unknown): boolean {
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') return true;
    if (v !== null && typeof v === 'object') for (const k in v) stack.push((v as Record<string, unknown>)[k]);
  }
  return false;
}

/** The first match of the extract's paths in `input` that is not missing; undefined if none. */
function firstMatch(ex: CompiledExtract, input: unknown): unknown {
  if (input === null || typeof input !== 'object') return undefined;
  for (const [i, path] of ex.paths.entries()) {
    const steps = ex.walks[i];
    if (steps && ex.single[i]) {
      const found = walkOne(input, steps);
      if (!isMissing(found)) return found;
      continue;
    }
    let matches: unknown[];
    if (steps) matches = walk(input, steps);
    else {
      try {
        // eval: false — no filter or script evaluation, whatever the path says. An exact number
        // is a value, not an object to search: nothing inside one (its digits' field) matches.
        const found = JSONPath({ path, json: input as object, eval: false, wrap: true, resultType: 'all' }) as {
          value: unknown;
          parent: unknown;
        }[];
        matches = found.filter((m) => !(m.parent instanceof ExactNumber)).map((m) => m.value);
      } catch (err) {
        // A search (`$..`) through a document nested deeper than the stack overflows it: say so
        // in the user's terms, not the engine's.
        const why = err instanceof RangeError ? `the document nests too deeply to search with ${path}` : (err as Error).message;
        throw new ExtractFailure('extract_failed', `${ex.plan.name}: ${why}`);
      }
    }
    const found = matches?.find((m) => !isMissing(m));
    if (found !== undefined) return found;
  }
  return undefined;
}
