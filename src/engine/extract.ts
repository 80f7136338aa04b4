/** Extraction of values from JSON text or structured fields with the plan's checked JSONPaths. */
import { JSONPath } from 'jsonpath-plus';
import { isSafeNumber, parse as parseLossless } from 'lossless-json';
import type { ExtractPlan } from '../plan/types.js';
import { ExactNumber, isMissing } from '../plan/values.js';
import { type Context, resolveRef } from './context.js';

export class ExtractFailure extends Error {
  constructor(
    readonly reason: 'invalid_json' | 'extract_failed',
    message: string,
  ) {
    super(message);
  }
}

/** An extract with its JSONPaths parsed once, not once per record. */
export interface CompiledExtract {
  readonly plan: ExtractPlan;
  readonly paths: readonly string[][];
  /**
   * For paths made only of names and indexes (most are): the segments to walk directly, which
   * gives jsonpath-plus's answer without its per-call setup. Undefined where a path needs it.
   */
  readonly direct: readonly (readonly string[] | undefined)[];
}

const PLAIN_SEGMENT = /^(?:[0-9]+|[^*.[\]()?@$^~:,'"]+)$/;

export function prepareExtract(plan: ExtractPlan): CompiledExtract {
  // toPathArray caches and shares its arrays; copy so nothing downstream can alter the cache.
  const paths = plan.paths.map((p) => [...JSONPath.toPathArray(p)]);
  const direct = paths.map((segs) => (segs[0] === '$' && segs.slice(1).every((s) => PLAIN_SEGMENT.test(s)) ? segs.slice(1) : undefined));
  return { plan, paths, direct };
}

/** A plain path walked through own properties, as jsonpath-plus would match it. */
function walk(input: unknown, segments: readonly string[]): unknown {
  let value = input;
  for (const seg of segments) {
    if (value === null || typeof value !== 'object') return undefined;
    if (Array.isArray(value)) value = /^[0-9]+$/.test(seg) ? value[Number(seg)] : undefined;
    else value = Object.hasOwn(value, seg) ? (value as Record<string, unknown>)[seg] : undefined;
  }
  return value;
}

/**
 * A number literal a double may not hold exactly: 16 or more digits in a row, or an exponent of
 * three digits. JSON text without one parses with JSON.parse, which gives the same values faster.
 */
const MAYBE_INEXACT_NUMBER = /[0-9]{16}|[eE][+-]?[0-9]{3}/;

/**
 * Parses JSON text so that every number keeps its value: one a double holds exactly stays a
 * number; any other (an id of 19 digits, 1e400) becomes an `ExactNumber` with its text, which
 * the adapters write exactly or fail with `value_not_exact` (lossless-json; JSON.parse would
 * round 1091482500479000001 to 1091482500479000064 without a word).
 * @throws SyntaxError for text that is not JSON, including an object with a duplicate key;
 *   RangeError when nested deeper than the parser's stack.
 */
export function parseJsonExactly(text: string): unknown {
  if (!MAYBE_INEXACT_NUMBER.test(text)) return JSON.parse(text);
  return parseLossless(text, null, (literal) => (isSafeNumber(literal) ? Number(literal) : new ExactNumber(literal)));
}

export function runExtract(ex: CompiledExtract, ctx: Context): unknown {
  let input = resolveRef(ctx, ex.plan.from);
  if (isMissing(input)) return undefined;
  if (ex.plan.parse === 'json') {
    if (typeof input !== 'string') {
      throw new ExtractFailure('invalid_json', `${ex.plan.from.text} is not JSON text`);
    }
    try {
      input = parseJsonExactly(input);
    } catch (err) {
      // Deeply nested JSON overflows the parser's stack: it is as unusable as malformed JSON.
      const why = err instanceof RangeError ? 'nested too deeply' : 'not valid JSON';
      throw new ExtractFailure('invalid_json', `${ex.plan.from.text} is ${why}`);
    }
  }
  if (input === null || typeof input !== 'object') return undefined;
  for (const [i, path] of ex.paths.entries()) {
    const direct = ex.direct[i];
    if (direct) {
      const found = walk(input, direct);
      if (!isMissing(found)) return found;
      continue;
    }
    let matches: unknown[];
    try {
      // eval: false — no filter or script evaluation, whatever the path says.
      matches = JSONPath({ path, json: input as object, eval: false, wrap: true }) as unknown[];
    } catch (err) {
      throw new ExtractFailure('extract_failed', `${ex.plan.name}: ${(err as Error).message}`);
    }
    const found = matches?.find((m) => !isMissing(m));
    if (found !== undefined) return found;
  }
  return undefined;
}
