/**
 * Expressions (CEL) behind one small interface:
 * - `checkExpression(source, names)`: parse and type-check once → the names it reads and its
 *   type, or problems with their offset in the source (for `validate`'s `file:line:col`);
 * - `evaluateExpression(plan, ctx)`: run against one record's context → a value, `MISSING`
 *   (an absent value was read and not handled), or an `ExprRuntimeError` (reason + message).
 *
 * A plan keeps only the expression's text and the names it reads (`ExprPlan`), so it stays
 * JSON; programs are compiled from that text once per process and cached.
 */
import type { Environment } from '@marcbachmann/cel-js';
import type { ExprPlan } from '../../plan/types.js';
import { exactNumberText } from '../../plan/values.js';
import { ExprRuntimeError, environmentFor, exceededCheck, inspectAndMeter, MAX_EXPR_LENGTH, resetMeter } from './environment.js';
import { fromCel, toCel } from './values.js';

export { ExprRuntimeError } from './environment.js';

/** A compile-time problem: a DF code, a message, and where in the expression text it starts. */
export interface ExprProblem {
  readonly code: string;
  readonly message: string;
  readonly offset: number;
}

/**
 * A checked expression: the names it reads (in first-use order), what it reads of each (a
 * `root.field` pair, or the root alone when it uses the whole value), and its CEL result type.
 */
export interface CheckedExpr {
  readonly roots: readonly string[];
  readonly reads: readonly { readonly root: string; readonly field?: string }[];
  readonly type: string;
}

interface Program {
  readonly roots: readonly string[];
  readonly run: (activation: Record<string, unknown>) => unknown;
}

interface CelLikeError {
  readonly code?: string;
  readonly summary?: string;
  readonly message: string;
  readonly range?: { start: number; end: number };
}

/** The DF code for a cel-js parse or check error code. */
function codeFor(celCode: string | undefined): string {
  switch (celCode) {
    case 'unknown_variable':
      return 'DF231';
    case 'invalid_regular_expression':
      return 'DF236';
    case undefined:
    case 'parse_error':
    case 'unexpected_token':
    case 'unexpected_character':
    case 'invalid_macro_argument':
      return 'DF230';
    default:
      return /limit|max/i.test(celCode) ? 'DF233' : celCode.includes('overload') || celCode.includes('type') ? 'DF232' : 'DF230';
  }
}

function parseChecked(env: Environment, source: string): { parsed?: ReturnType<Environment['parse']>; problems: ExprProblem[] } {
  if (source.trim() === '') return { problems: [{ code: 'DF230', message: 'the expression is empty', offset: 0 }] };
  if (source.length > MAX_EXPR_LENGTH) {
    return {
      problems: [{ code: 'DF233', message: `the expression is ${source.length} characters; the limit is ${MAX_EXPR_LENGTH}`, offset: 0 }],
    };
  }
  try {
    return { parsed: env.parse(source), problems: [] };
  } catch (err) {
    const e = err as CelLikeError;
    const limit = /max(AstNodes|Depth|ListElements|MapEntries|CallArguments)|exceed/i.test(e.message);
    return {
      problems: [
        {
          code: limit ? 'DF233' : 'DF230',
          message: limit ? `the expression is too large or nested too deeply: ${e.summary ?? e.message}` : (e.summary ?? e.message),
          offset: e.range?.start ?? 0,
        },
      ],
    };
  }
}

/**
 * Parses and type-checks `source` against the names a spec can know (`names`: the source alias,
 * lookups, extracts, `now` and any local name such as an extract's `value`).
 */
export function checkExpression(source: string, names: readonly string[]): { checked?: CheckedExpr; problems: ExprProblem[] } {
  const env = environmentFor(names);
  const { parsed, problems } = parseChecked(env, source);
  if (!parsed) return { problems };
  const facts = inspectAndMeter(parsed.ast);
  const out: ExprProblem[] = facts.forbidden.map((f) => ({ code: 'DF233', message: f.message, offset: f.start }));
  const known = new Set(names);
  for (const n of facts.names) {
    if (!known.has(n.name)) {
      out.push({ code: 'DF231', message: `\`${n.name}\` is not defined; known names: ${[...known].join(', ')}`, offset: n.start });
    }
  }
  if (out.length > 0) return { problems: out };
  const result = parsed.check() as { valid: boolean; type?: string; error?: CelLikeError };
  if (!result.valid) {
    const e = result.error as CelLikeError;
    return { problems: [{ code: codeFor(e.code), message: e.summary ?? e.message, offset: e.range?.start ?? 0 }] };
  }
  // A conversion of literal text gives the same answer for every record: a bad one is found here.
  for (const { call, start } of facts.literalConversions) {
    try {
      env.evaluate(call);
    } catch (err) {
      const why = ((err as CelLikeError).summary ?? (err as Error).message).split('\n')[0];
      out.push({ code: 'DF232', message: `\`${call}\` fails for every record: ${why}`, offset: start });
    }
  }
  if (out.length > 0) return { problems: out };
  const roots = [...new Set(facts.names.map((n) => n.name))];
  const seen = new Set<string>();
  const reads = facts.names
    .map((n) => ({ root: n.name, ...(n.field !== undefined ? { field: n.field } : {}) }))
    .filter((r) => {
      const k = `${r.root}.${r.field ?? ''}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  return { checked: { roots, reads, type: result.type ?? 'dyn' }, problems: [] };
}

/** An optional (`row.?x`) as its value, or undefined when it holds none. */
function unwrapOptional(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || (v as { constructor?: { name?: string } }).constructor?.name !== 'Optional') return v;
  const o = v as { hasValue(): boolean; value(): unknown };
  return o.hasValue() ? o.value() : undefined;
}

/**
 * A record's CEL form, converted once however many expressions read it (CEL never changes its
 * inputs). Keyed by the record object itself, so it goes when the record does.
 */
const converted = new WeakMap<object, unknown>();

function celValueOf(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return toCel(v);
  if (converted.has(v)) return converted.get(v);
  const c = toCel(v);
  converted.set(v, c);
  return c;
}

const programs = new Map<string, Program>();

/** The program for a plan's expression, compiled on first use (once per process). */
function programOf(plan: ExprPlan): Program {
  const key = `${plan.roots.join(',')}\u0000${plan.source}`;
  let p = programs.get(key);
  if (p) return p;
  const env = environmentFor(plan.roots);
  const parsed = env.parse(plan.source);
  inspectAndMeter(parsed.ast);
  const checked = parsed.check() as { valid: boolean; error?: Error };
  // A saved plan is checked when it is made; one edited by hand fails here, on its first record.
  if (!checked.valid) throw new ExprRuntimeError('expression_error', checked.error?.message ?? 'the expression does not type-check');
  p = { roots: plan.roots, run: (a) => parsed(a) };
  if (programs.size >= 1000) programs.clear();
  programs.set(key, p);
  return p;
}

const fieldsCache = new WeakMap<ExprPlan, Map<string, Set<string>>>();

/**
 * Per root, the fields an expression reads (`row.email` → email), for the roots it reads only by
 * field; a root it also uses whole (`size(row)`, `row[k]`) is left out: all of it is converted.
 */
function fieldsRead(plan: ExprPlan): Map<string, Set<string>> {
  const known = fieldsCache.get(plan);
  if (known) return known;
  const out = new Map<string, Set<string>>();
  const whole = new Set<string>();
  for (const r of plan.reads ?? plan.roots.map((root) => ({ root, path: [] as string[] }))) {
    const field = r.path[0];
    if (r.path.length === 0 || field === undefined) whole.add(r.root);
    else out.set(r.root, (out.get(r.root) ?? new Set()).add(field));
  }
  for (const root of whole) out.delete(root);
  fieldsCache.set(plan, out);
  return out;
}

/** Rendered value of an expression that read an absent value without handling it. */
export const EXPR_MISSING: unique symbol = Symbol('expression-missing');

/**
 * Evaluates an expression against one record's context (`ctx`: root name → value, `now` as ISO
 * text). A lookup that found nothing reads as an empty map, so `has(cust.name)` is false and
 * `cust.?name.orValue("none")` gives "none"; any other absent root, or a missing key read
 * without `has()`/`?`, makes the whole result `EXPR_MISSING`. A result of null or "" is missing too.
 * @throws ExprRuntimeError for a failure that is not absence (a bad conversion, overflow,
 *   division by zero, a bound exceeded, a number an expression cannot hold exactly).
 */
export function evaluateExpression(
  plan: ExprPlan,
  ctx: ReadonlyMap<string, unknown>,
  recordRoots: ReadonlySet<string> = new Set(),
): unknown | typeof EXPR_MISSING {
  const program = programOf(plan);
  const activation: Record<string, unknown> = {};
  const fields = fieldsRead(plan);
  for (const root of program.roots) {
    const v = ctx.get(root);
    if (root === 'now') {
      if (typeof v === 'string') activation.now = new Date(v);
      continue;
    }
    // Only the fields the expression reads are converted: a value it never reads (a 38-digit
    // number, a long text) cannot fail it.
    const only = fields.get(root);
    const c =
      only &&
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      !(v instanceof Set) &&
      !(v instanceof Uint8Array) &&
      exactNumberText(v) === undefined
        ? toCel(Object.fromEntries([...only].filter((f) => Object.hasOwn(v, f)).map((f) => [f, (v as Record<string, unknown>)[f]])))
        : celValueOf(v);
    if (c !== undefined) activation[root] = c;
    else if (v === null) activation[root] = null;
    else if (recordRoots.has(root)) activation[root] = {};
  }
  resetMeter();
  let result: unknown;
  try {
    result = program.run(activation);
  } catch (err) {
    if (err instanceof ExprRuntimeError) throw err;
    const e = err as CelLikeError;
    if (e.code === 'no_such_key' || e.code === 'unknown_variable') return EXPR_MISSING;
    // Only a stack overflow means "too deep"; other RangeErrors (an unknown time zone given to
    // getHours) are the expression's own error.
    if (err instanceof RangeError && /call stack/i.test(err.message))
      throw new ExprRuntimeError('expression_limit', 'the expression nests too deeply for this value');
    throw new ExprRuntimeError('expression_error', `\`${plan.source}\`: ${e.summary ?? e.message}`);
  }
  // A bound exceeded inside `||`, `&&` or a quantifier macro is absorbed by CEL's error rules.
  exceededCheck();
  result = unwrapOptional(result);
  if (result === null || result === undefined || result === '') return EXPR_MISSING;
  return fromCel(result);
}
