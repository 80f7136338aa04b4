/**
 * The CEL environment every expression of a spec is checked and run in: the CEL standard library
 * of @marcbachmann/cel-js minus what could run unbounded or reach the host, with `matches` on
 * RE2 (re2js: linear time, no backtracking), a few documented helpers, and a cost meter.
 *
 * Bounds, in order of when they apply:
 * - parse: `MAX_EXPR_LENGTH` characters, `MAX_AST_NODES` nodes, `MAX_DEPTH` nesting (cel-js limits);
 * - check: no `cel.bind` (it would let a string double per step), macros nested at most
 *   `MAX_MACRO_NESTING` deep;
 * - run: every node evaluated is charged 1 plus the size of what it produced (a string's length
 *   / 16, a list's or map's entries); past `MAX_COST` the record fails with `expression_limit`,
 *   as it does when a string exceeds `MAX_STRING` characters or a list `MAX_LIST` entries.
 */
import { createRequire } from 'node:module';
import type { Environment } from '@marcbachmann/cel-js';
import type { RE2JS } from 're2js';

/**
 * The libraries are loaded on first use, not at import: loading cel-js costs tens of
 * milliseconds, which a spec without expressions (and every CLI start) should not pay.
 */
const requireLazily = createRequire(import.meta.url);
let re2Module: typeof import('re2js') | undefined;

/** Longest expression text accepted. */
export const MAX_EXPR_LENGTH = 2000;
/** Largest parsed expression (cel-js `maxAstNodes`). */
export const MAX_AST_NODES = 400;
/** Deepest nesting of the parsed expression (cel-js `maxDepth`). */
export const MAX_DEPTH = 32;
/** How deep list macros (`map`, `filter`, `all`, `exists`, `exists_one`) may nest in one another. */
export const MAX_MACRO_NESTING = 2;
/** Work units one evaluation may spend (see the module comment). */
export const MAX_COST = 2_000_000;
/** Longest string an expression may read or produce, in UTF-16 units. */
export const MAX_STRING = 1_000_000;
/** Most entries a list or map an expression reads or produces may have. */
export const MAX_LIST = 100_000;
/** Longest regular expression `matches` accepts. */
export const MAX_PATTERN = 1000;

/** A failure of one record's evaluation that is not an absent value. */
export class ExprRuntimeError extends Error {
  constructor(
    readonly reason: 'expression_error' | 'expression_limit' | 'value_not_exact',
    message: string,
  ) {
    super(message);
  }
}

/** Per-evaluation meter; evaluation is synchronous, so one meter serves every program. */
const meter: { spent: number; failed?: string } = { spent: 0 };

/** Starts a fresh budget; called before each evaluation. */
export function resetMeter(): void {
  meter.spent = 0;
  meter.failed = undefined;
}

function limit(message: string): never {
  meter.failed = message;
  throw new ExprRuntimeError('expression_limit', message);
}

/** Throws `expression_limit` when the evaluation just finished spent more than its budget. */
export function exceededCheck(): void {
  if (meter.failed) throw new ExprRuntimeError('expression_limit', meter.failed);
}

/** Charges `units` of work done beyond the value produced; throws `expression_limit` past the budget. */
function chargeUnits(units: number): void {
  meter.spent += units;
  if (meter.spent > MAX_COST) limit(`the expression did more than ${MAX_COST} units of work on this record`);
}

/** Charges a produced value; throws `expression_limit` past a bound. */
export function charge(value: unknown): void {
  let size = 0;
  if (typeof value === 'string') {
    if (value.length > MAX_STRING) limit(`a string of ${value.length} characters exceeds the limit of ${MAX_STRING}`);
    size = value.length >> 4;
  } else if (Array.isArray(value)) {
    if (value.length > MAX_LIST) limit(`a list of ${value.length} entries exceeds the limit of ${MAX_LIST}`);
    size = value.length;
  } else if (value instanceof Map) size = value.size;
  meter.spent += 1 + size;
  if (meter.spent > MAX_COST) limit(`the expression did more than ${MAX_COST} units of work on this record`);
}

const regexCache = new Map<string, RE2JS>();

/**
 * Compiles an RE2 pattern once (cached, bounded). RE2 syntax: no backreferences or lookaround,
 * and matching time is linear in the input whatever the pattern.
 * @throws ExprRuntimeError (`expression_error`) for a pattern RE2 cannot compile or one too long.
 */
export function re2(pattern: string): RE2JS {
  let re = regexCache.get(pattern);
  if (re) return re;
  if (pattern.length > MAX_PATTERN) {
    throw new ExprRuntimeError(
      'expression_limit',
      `a regular expression of ${pattern.length} characters exceeds the limit of ${MAX_PATTERN}`,
    );
  }
  try {
    re2Module ??= requireLazily('re2js') as typeof import('re2js');
    re = re2Module.RE2JS.compile(pattern);
  } catch (err) {
    throw new ExprRuntimeError('expression_error', `invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  if (regexCache.size >= 500) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

interface AstLike {
  readonly op: string;
  readonly args: unknown;
  check(...a: unknown[]): unknown;
  evaluate(...a: unknown[]): unknown;
}
interface Checker {
  check(node: unknown, ctx: unknown): { name: string; kind: string };
  getType(name: string): unknown;
  createError(code: string, message: string, node: unknown): Error;
}
interface Evaluator {
  run(node: unknown, ctx: unknown): unknown;
}

/**
 * `s.matches(re)` on RE2. cel-js's own `string.matches` builds a JS RegExp (backtracking, so
 * `(a+)+$` can take exponential time). A macro takes over the method name at parse time: every
 * `x.matches(y)` is expanded into this node before the built-in could be chosen (a macro is
 * found by name and arity, whatever the receiver type it is declared on).
 */
function registerRe2Matches(env: Environment): void {
  env.registerFunction('bytes.matches(ast): bool', ((opts: { receiver: AstLike; args: AstLike[] }) => ({
    receiver: opts.receiver,
    pattern: opts.args[0],
    async: false,
    typeCheck(chk: Checker, m: { receiver: AstLike; pattern: AstLike }, ctx: unknown) {
      const r = chk.check(m.receiver, ctx);
      const p = chk.check(m.pattern, ctx);
      for (const [t, node] of [
        [r, m.receiver],
        [p, m.pattern],
      ] as const) {
        if (t.name !== 'string' && t.kind !== 'dyn') {
          throw chk.createError('no_matching_overload', `found no matching overload for 'matches' on ${t.name}: it takes strings`, node);
        }
      }
      // A literal pattern is compiled here, so `validate` reports a bad one.
      if (m.pattern.op === 'value' && typeof m.pattern.args === 'string') {
        try {
          re2(m.pattern.args);
        } catch (err) {
          throw chk.createError('invalid_regular_expression', (err as Error).message, m.pattern);
        }
      }
      return chk.getType('bool');
    },
    evaluate(ev: Evaluator, m: { receiver: AstLike; pattern: AstLike }, ctx: unknown) {
      const s = ev.run(m.receiver, ctx);
      const p = ev.run(m.pattern, ctx);
      if (typeof s !== 'string' || typeof p !== 'string') {
        throw new ExprRuntimeError('expression_error', `matches takes strings, not ${typeof s} and ${typeof p}`);
      }
      // RE2 matches in time linear in the text times the size of the compiled program ((a*){400}
      // compiles to 1603 instructions): charged before matching, one unit for 8 such steps
      // (about 1 µs), so a long pattern over long text is refused, not run for minutes.
      charge(s);
      const re = re2(p);
      chargeUnits(Math.ceil((s.length * re.programSize()) / 8));
      return re.matcher(s).find();
    },
  })) as never);
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Names CEL itself defines: the type constants (`type(x) == int`) and the `cel` namespace. */
const BUILT_IN_NAMES = new Set(['int', 'uint', 'double', 'string', 'bool', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn', 'cel']);

/**
 * `s.replace(from, to[, n])` (CEL strings extension): every (or the first `n`) occurrence of
 * `from`, literally. The result's size is known before it is built, so a replacement that would
 * pass `MAX_STRING` fails without allocating it.
 */
function replaceBounded(s: string, from: string, to: string, n: number): string {
  if (n === 0) return s;
  const count = from === '' ? s.length + 1 : s.split(from).length - 1;
  const times = n < 0 ? count : Math.min(n, count);
  const size = s.length + times * (to.length - from.length);
  if (size > MAX_STRING) limit(`replace would make a string of ${size} characters; the limit is ${MAX_STRING}`);
  if (n < 0) return s.replaceAll(from, to);
  let out = s;
  let at = 0;
  for (let i = 0; i < times; i++) {
    const k = out.indexOf(from, at);
    if (k < 0) break;
    out = out.slice(0, k) + to + out.slice(k + from.length);
    at = k + to.length + (from === '' ? 1 : 0);
  }
  return out;
}

let base: Environment | undefined;

/**
 * The shared environment (built once): the standard library, RE2 `matches`, and `string()` of a
 * timestamp (RFC 3339 text) and of a duration (seconds, as `"86400s"`), which cel-js lacks.
 */
export function baseEnvironment(): Environment {
  if (base) return base;
  const cel = requireLazily('@marcbachmann/cel-js') as typeof import('@marcbachmann/cel-js');
  const env = new cel.Environment({
    unlistedVariablesAreDyn: false,
    enableOptionalTypes: true,
    homogeneousAggregateLiterals: false,
    limits: { maxAstNodes: MAX_AST_NODES, maxDepth: MAX_DEPTH, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 8 },
  });
  registerRe2Matches(env);
  env.registerFunction('string.replace(string, string): string', (s: string, from: string, to: string) => replaceBounded(s, from, to, -1));
  env.registerFunction('string.replace(string, string, int): string', (s: string, from: string, to: string, n: bigint) =>
    replaceBounded(s, from, to, Number(n)),
  );
  env.registerFunction('string(google.protobuf.Timestamp): string', (t: Date) => t.toISOString());
  env.registerFunction('string(google.protobuf.Duration): string', (d: { seconds: bigint; nanos: number }) =>
    d.nanos === 0 ? `${d.seconds}s` : `${Number(d.seconds) + d.nanos / 1e9}s`,
  );
  base = env;
  return env;
}

/** A fresh child environment declaring `names` (all `dyn`, `now` a timestamp). */
export function environmentFor(names: readonly string[]): Environment {
  const env = baseEnvironment().clone();
  for (const n of names) env.registerVariable(n, n === 'now' ? 'google.protobuf.Timestamp' : 'dyn');
  return env;
}

/** What a walk over a parsed expression found. */
export interface AstFacts {
  /**
   * Top-level names read (variables), without macro iteration variables; `field` is the field
   * read right after the name (`row.email` → email), undefined when the whole value is used.
   */
  readonly names: { readonly name: string; readonly start: number; readonly field?: string }[];
  /** Where a forbidden construct is, with why. */
  readonly forbidden: { readonly start: number; readonly message: string }[];
  /**
   * Conversions of a literal text (`duration("30d")`, `timestamp("2029-10-01")`, `int("x")`):
   * their result is known before any record, so a bad one is a spec error, not a failure of
   * every record.
   */
  readonly literalConversions: { readonly call: string; readonly start: number }[];
}

/** Conversion functions whose literal argument is checked when the spec is. */
const LITERAL_CONVERSIONS = new Set(['duration', 'timestamp', 'int', 'uint', 'double', 'bool']);

function children(node: AstLike): AstLike[] {
  const out: AstLike[] = [];
  const push = (v: unknown): void => {
    if (v && typeof v === 'object' && 'op' in v && typeof (v as AstLike).evaluate === 'function') out.push(v as AstLike);
    else if (Array.isArray(v)) v.forEach(push);
  };
  const a = node.args;
  if (node.op === 'comprehension' && a && typeof a === 'object') {
    const c = a as Record<string, unknown>;
    push(c.iterable);
    push(c.init);
    push(c.step);
  } else push(a);
  const meta = (node as unknown as { meta?: { alternate?: unknown } }).meta;
  if (meta?.alternate) push(meta.alternate);
  return out;
}

/**
 * Walks a freshly parsed expression: collects the names it reads, refuses `cel.bind` and macros
 * nested deeper than `MAX_MACRO_NESTING`, and wraps every node's evaluation with the cost meter.
 */
export function inspectAndMeter(root: unknown): AstFacts {
  const names: { name: string; start: number; field?: string }[] = [];
  const forbidden: { start: number; message: string }[] = [];
  const literalConversions: { call: string; start: number }[] = [];
  const iterVars = new Set<string>();
  const walk = (node: AstLike, nesting: number, parent?: AstLike): void => {
    const start = (node as unknown as { start: number }).start;
    if (node.op === 'comprehension') {
      const c = node.args as { iterVarName: string };
      iterVars.add(c.iterVarName);
      if (nesting + 1 > MAX_MACRO_NESTING) {
        forbidden.push({ start, message: `list macros nest at most ${MAX_MACRO_NESTING} deep; split the work or drop a level` });
      }
    }
    if (node.op === 'rcall' && Array.isArray(node.args) && node.args[0] === 'bind') {
      forbidden.push({ start, message: '`cel.bind` is not available in datafix expressions' });
    }
    // cel-js parses with JSON.parse, which rounds numbers beyond 2^53 without a word.
    if (node.op === 'rcall' && Array.isArray(node.args) && node.args[0] === 'json') {
      forbidden.push({
        start,
        message: '`json()` is not available: it would round large numbers. Parse JSON with an extract (`parse: json`)',
      });
    }
    if (node.op === 'call' && Array.isArray(node.args) && LITERAL_CONVERSIONS.has(String(node.args[0]))) {
      const [fn, callArgs] = node.args as [string, AstLike[] | undefined];
      const arg = Array.isArray(callArgs) && callArgs.length === 1 ? callArgs[0] : undefined;
      if (arg?.op === 'value' && typeof arg.args === 'string')
        literalConversions.push({ call: `${fn}(${JSON.stringify(arg.args)})`, start });
    }
    if (node.op === 'id' && typeof node.args === 'string') {
      const p = parent && (parent.op === '.' || parent.op === '.?') && Array.isArray(parent.args) ? parent.args : undefined;
      const field = p && p[0] === node && typeof p[1] === 'string' ? p[1] : undefined;
      names.push({ name: node.args, start, ...(field !== undefined ? { field } : {}) });
    }
    // Values are plain data read through own properties; these names could only reach a prototype.
    if (Array.isArray(node.args) && (node.op === '.' || node.op === '.?') && FORBIDDEN.has(String(node.args[1]))) {
      forbidden.push({ start, message: `\`${node.args[1]}\` is not allowed as a field name` });
    }
    meterNode(node);
    const inner = node.op === 'comprehension' ? nesting + 1 : nesting;
    for (const c of children(node)) walk(c, inner, node);
  };
  walk(root as AstLike, 0);
  return { names: names.filter((n) => !iterVars.has(n.name) && !BUILT_IN_NAMES.has(n.name)), forbidden, literalConversions };
}

/**
 * Replaces a node's `evaluate` with one that charges the meter for what the node produced.
 * cel-js swaps a node's `evaluate` for a specialised one on its first call, so the wrapper puts
 * itself back after each call.
 */
function meterNode(node: AstLike): void {
  const proto = Object.getPrototypeOf(node) as AstLike;
  const toDouble = node.op === 'call' && Array.isArray(node.args) && node.args[0] === 'double';
  const metered = function (this: AstLike, ...args: unknown[]): unknown {
    const v = proto.evaluate.apply(this, args);
    (this as { evaluate: unknown }).evaluate = metered;
    charge(v);
    // A whole double beyond 2^53 may not be the number converted (double(9007199254740993) is
    // 9007199254740992): refused rather than passed on with a digit lost.
    if (toDouble && typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw new ExprRuntimeError('value_not_exact', `double() gives ${v}, beyond 2^53, where a double may have lost digits`);
    }
    return v;
  };
  (node as { evaluate: unknown }).evaluate = metered;
}
