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
}

export function prepareExtract(plan: ExtractPlan): CompiledExtract {
  // toPathArray caches and shares its arrays; copy so nothing downstream can alter the cache.
  return { plan, paths: plan.paths.map((p) => [...JSONPath.toPathArray(p)]) };
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
  for (const path of ex.paths) {
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
