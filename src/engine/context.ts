/**
 * Pure per-record evaluation: resolving references, rendering templates and testing conditions
 * against one record's context. No I/O, no backend knowledge.
 */
import { EXPR_MISSING, ExprRuntimeError, evaluateExpression } from '../language/expr/index.js';
import { satisfiesStrict } from '../plan/compare.js';
import type { Condition, ExprPlan, Ref, Template, ValueTestOp } from '../plan/types.js';
import { deepEqual, exactNumberText, isAbsent, isMissing } from '../plan/values.js';

/** The values a record's references resolve against: source alias, lookups, extracts, `now`. */
export type Context = Map<string, unknown>;

/** Rendered value of a template whose reference was absent: the field is not written. */
export const MISSING: unique symbol = Symbol('missing');

/**
 * A record whose template or condition cannot be evaluated: it fails with `reason`
 * (`template_error`, or for an expression `expression_error`, `expression_limit`, `value_not_exact`).
 */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly reason: 'template_error' | 'expression_error' | 'expression_limit' | 'value_not_exact' = 'template_error',
  ) {
    super(message);
  }
}

/**
 * An expression's value for this record, or MISSING when it read an absent value it did not
 * handle. @throws TemplateError with the expression's failure reason.
 */
export function expressionValue(e: ExprPlan, ctx: Context): unknown {
  try {
    const v = evaluateExpression(e, ctx, new Set(e.records ?? []));
    return v === EXPR_MISSING ? MISSING : v;
  } catch (err) {
    if (err instanceof ExprRuntimeError) throw new TemplateError(err.message, err.reason);
    throw err;
  }
}

/** Follows a reference through own properties only, so `constructor` or a prototype is never reached. */
export function resolveRef(ctx: Context, ref: Ref): unknown {
  let value: unknown = ctx.get(ref.root);
  const { path, indexes } = ref;
  // An index loop: this runs several times per record, and an entries() iterator per call showed.
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as string;
    if (value === null || typeof value !== 'object' || value instanceof Set || value instanceof Uint8Array) {
      return undefined;
    }
    // `[N]` reads a list element and nothing else; a name reads a map key and nothing else, as
    // the same reference in a DynamoDB filter does.
    if (indexes?.includes(i)) value = Array.isArray(value) ? value[Number(seg)] : undefined;
    else if (Array.isArray(value)) value = undefined;
    else value = Object.hasOwn(value, seg) ? (value as Record<string, unknown>)[seg] : undefined;
  }
  return value;
}

function textOf(value: unknown, ref: Ref): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  const exact = exactNumberText(value);
  if (exact !== undefined) return exact;
  throw new TemplateError(`{{ ${ref.text} }} is not text or a number and cannot be placed inside a string`);
}

export function render(t: Template, ctx: Context): unknown {
  switch (t.kind) {
    case 'literal':
      return t.value;
    case 'ref': {
      const v = resolveRef(ctx, t.ref);
      return isMissing(v) ? MISSING : v;
    }
    case 'string': {
      let out = '';
      for (const part of t.parts) {
        if (typeof part === 'string') {
          out += part;
          continue;
        }
        const v = resolveRef(ctx, part);
        // "MEDIA#" from an empty id would address the wrong record: empty counts as missing.
        if (isMissing(v)) return MISSING;
        out += textOf(v, part);
      }
      return out;
    }
    case 'expr':
      return expressionValue(t.expr, ctx);
    case 'text': {
      let out = '';
      for (const part of t.parts) {
        if (typeof part === 'string') out += part;
        else if ('source' in part) {
          const v = expressionValue(part, ctx);
          if (v === MISSING) return MISSING;
          out += textOf(v, { root: '', path: [], text: part.source });
        } else {
          const v = resolveRef(ctx, part);
          if (isMissing(v)) return MISSING;
          out += textOf(v, part);
        }
      }
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, sub] of t.entries) {
        const v = render(sub, ctx);
        if (v === MISSING) return MISSING;
        out[k] = v;
      }
      return out;
    }
    case 'array': {
      const out: unknown[] = [];
      for (const sub of t.items) {
        const v = render(sub, ctx);
        if (v === MISSING) return MISSING;
        out.push(v);
      }
      return out;
    }
  }
}

/** Decides one comparison (`lt` … `type`) of a value read, with the target's meaning. */
export type ValueTester = (op: ValueTestOp, values: readonly unknown[], stored: unknown, ref: Ref) => boolean;

/**
 * Whether a condition holds for one record. `same` decides `equals` and `test` the comparisons,
 * each as the target compares (the run passes the adapter's rules; the defaults are exact
 * equality and DynamoDB's rules). A missing value satisfies no comparison.
 */
export function evaluate(
  cond: Condition,
  ctx: Context,
  same: (a: unknown, b: unknown, ref: Ref) => boolean = (a, b) => deepEqual(a, b),
  test: ValueTester = (op, values, stored) => satisfiesStrict(op, values, stored),
): boolean {
  switch (cond.op) {
    case 'exists':
      return cond.refs.every((r) => !isMissing(resolveRef(ctx, r)));
    case 'missing':
      return cond.refs.every((r) => isMissing(resolveRef(ctx, r)));
    case 'isNull':
      return cond.refs.every((r) => isAbsent(resolveRef(ctx, r)));
    case 'notNull':
      return cond.refs.every((r) => !isAbsent(resolveRef(ctx, r)));
    case 'equals':
      return cond.pairs.every(({ ref, value }) => {
        const v = resolveRef(ctx, ref);
        return value === null ? isAbsent(v) : same(v, value, ref);
      });
    case 'all':
      return cond.of.every((c) => evaluate(c, ctx, same, test));
    case 'any':
      return cond.of.some((c) => evaluate(c, ctx, same, test));
    case 'not':
      return !evaluate(cond.of, ctx, same, test);
    case 'expr': {
      // An expression that read an absent value it did not handle is false: the rule does not apply.
      const v = expressionValue(cond.expr, ctx);
      if (v === MISSING) return false;
      if (typeof v !== 'boolean')
        throw new TemplateError(`\`${cond.expr.source}\` gave ${typeof v}, not true or false`, 'expression_error');
      return v;
    }
    default: {
      const op = cond.op;
      return cond.tests.every(({ ref, values }) => test(op, values, resolveRef(ctx, ref), ref));
    }
  }
}
