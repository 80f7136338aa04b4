/** Extraction of values from JSON text or structured fields with the plan's checked JSONPaths. */
import { JSONPath } from 'jsonpath-plus';
import type { ExtractPlan } from '../plan/types.js';
import { isMissing } from '../plan/values.js';
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

export function runExtract(ex: CompiledExtract, ctx: Context): unknown {
  let input = resolveRef(ctx, ex.plan.from);
  if (isMissing(input)) return undefined;
  if (ex.plan.parse === 'json') {
    if (typeof input !== 'string') {
      throw new ExtractFailure('invalid_json', `${ex.plan.from.text} is not JSON text`);
    }
    try {
      input = JSON.parse(input);
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
