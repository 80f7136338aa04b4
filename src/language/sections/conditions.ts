/**
 * Structured conditions (`exists`, `equals`, `all`, …) as written → `Condition`. The same
 * compiler serves SQL `where`, DynamoDB `filter` (where a reference names a column/attribute)
 * and skip rules (where it names a context value); the caller says how references are checked.
 */
import { conditionRefs } from '../../plan/conditions.js';
import { type Condition, type Ref, TYPE_NAMES, type TypeName, type ValueTest, type ValueTestOp } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import type { ConditionSpec } from '../types.js';
import { compileExpr } from './expressions.js';
import type { CompileScope } from './scope.js';

/** Checks one reference of a condition at its spec position (reporting through the scope). */
export type RefCheck = (r: Ref, path: PathSegment[]) => void;

/**
 * Compiles one condition; undefined (with diagnostics in `scope`) when it cannot be compiled.
 * `pushdown` names the database filter being compiled (`where`, `filter`): there an expression
 * cannot be evaluated, and is refused (DF234).
 */
export function compileCondition(
  cond: ConditionSpec,
  path: PathSegment[],
  scope: CompileScope,
  check: RefCheck,
  pushdown?: 'where' | 'filter',
): Condition | undefined {
  const [op, arg] = Object.entries(cond)[0] ?? [];
  const p = [...path, op ?? ''];
  switch (op) {
    case 'exists':
    case 'missing':
    case 'isNull':
    case 'notNull': {
      const list = Array.isArray(arg) ? arg : [arg];
      const refs = list.map((t, i) => scope.ref(t, Array.isArray(arg) ? [...p, i] : p));
      refs.forEach((r, i) => {
        if (r) check(r, Array.isArray(arg) ? [...p, i] : p);
      });
      if (refs.some((r) => !r)) return undefined;
      return { op, refs: refs as Ref[] };
    }
    case 'equals': {
      const pairs: { ref: Ref; value: unknown }[] = [];
      for (const [k, v] of Object.entries(arg as Record<string, unknown>)) {
        const r = scope.ref(k, [...p, k]);
        if (!r) continue;
        check(r, [...p, k]);
        const problem = literalValueProblem(v);
        if (problem) scope.error('DF214', [...p, k], problem);
        pairs.push({ ref: r, value: v });
      }
      return { op, pairs };
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
    case 'between':
    case 'beginsWith':
    case 'contains':
    case 'in':
    case 'type': {
      const tests: ValueTest[] = [];
      for (const [k, written] of Object.entries(arg as Record<string, unknown>)) {
        const r = scope.ref(k, [...p, k]);
        if (!r) continue;
        check(r, [...p, k]);
        // `type: { x: null }` is YAML's null, which a reader means as the type name `null`.
        const v = op === 'type' && written === null ? 'null' : written;
        const problem = literalValueProblem(v) ?? operandProblem(op, v, scope.backend);
        if (problem) {
          scope.error(problem.startsWith('type') ? 'DF251' : 'DF250', [...p, k], problem);
          continue;
        }
        tests.push({ ref: r, values: op === 'between' || op === 'in' ? (v as unknown[]) : [v] });
      }
      return { op, tests };
    }
    case 'all':
    case 'any': {
      const of = (arg as ConditionSpec[]).map((sub, i) => compileCondition(sub, [...p, i], scope, check, pushdown));
      return of.every(Boolean) ? { op, of: of as Condition[] } : undefined;
    }
    case 'not': {
      const of = compileCondition(arg as ConditionSpec, p, scope, check, pushdown);
      return of ? { op, of } : undefined;
    }
    case 'expr': {
      if (pushdown) {
        scope.error(
          'DF234',
          p,
          `an expression cannot be part of \`${pushdown}\`: the database evaluates it, and it cannot run CEL. Use the structured conditions there (exists, missing, isNull, notNull, equals, lt, lte, gt, gte, between, beginsWith, contains, in, type, all, any, not), and put the expression in a skip or fail rule`,
          true,
        );
        return undefined;
      }
      const expr = compileExpr(String(arg), p, 0, scope, { bool: true });
      if (!expr) return undefined;
      for (const root of expr.roots) check({ root, path: [], text: root }, p);
      return { op, expr };
    }
    default:
      scope.error(
        'DF106',
        path,
        'a condition needs exactly one of: exists, missing, isNull, notNull, equals, lt, lte, gt, gte, between, beginsWith, contains, in, type, all, any, not, expr',
      );
      return undefined;
  }
}

/** The most candidates an `in` takes: DynamoDB's limit on the operands of IN. */
export const MAX_IN_VALUES = 100;

const isOrdered = (v: unknown): v is string | number => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
const isScalar = (v: unknown): boolean => isOrdered(v) || typeof v === 'boolean';
const kindOf = (v: unknown): string => (Array.isArray(v) ? 'a list' : v === null ? 'null' : `the ${typeof v} ${JSON.stringify(v)}`);

/**
 * Why `value` cannot be the operand of comparison `op` on `backend`, or undefined. Ordered
 * comparisons take a string or a number (the types both databases order); `beginsWith` a string;
 * `contains` a string (SQLite: a substring) or, on DynamoDB, also a number (a member of a set or
 * list); `in` 1 to 100 strings, numbers or booleans; `type` a type name of the
 * backend. Messages about the type name start with "type" (DF251); the rest are DF250.
 */
export function operandProblem(op: ValueTestOp, value: unknown, backend: 'sqlite' | 'dynamodb'): string | undefined {
  switch (op) {
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return isOrdered(value) ? undefined : `\`${op}\` compares with a string or a number, not ${kindOf(value)}`;
    case 'between': {
      if (!Array.isArray(value) || value.length !== 2)
        return `\`between\` takes two values, \`[low, high]\` (both inclusive); got ${Array.isArray(value) ? `${value.length} value(s)` : kindOf(value)}`;
      const [low, high] = value as [unknown, unknown];
      if (!isOrdered(low) || !isOrdered(high)) return '`between` compares with strings or numbers';
      if (typeof low !== typeof high)
        return `\`between\` needs two values of one type; ${JSON.stringify(low)} and ${JSON.stringify(high)} are not (a string and a number never compare)`;
      // Text order depends on a SQLite column's collation ('apple' ≤ 'BANANA' under NOCASE), so
      // there only numbers are checked; DynamoDB orders text by bytes and refuses low > high.
      if ((backend === 'dynamodb' || typeof low === 'number') && orderedAfter(low, high))
        return `\`between\` needs \`[low, high]\` with low ≤ high; ${JSON.stringify(low)} comes after ${JSON.stringify(high)}, so nothing could match`;
      return undefined;
    }
    case 'beginsWith':
      return typeof value === 'string' ? undefined : `\`beginsWith\` takes a string prefix, not ${kindOf(value)}`;
    case 'contains':
      if (typeof value === 'string') return undefined;
      if (backend === 'dynamodb' && isOrdered(value)) return undefined;
      return backend === 'dynamodb'
        ? `\`contains\` takes a string (a substring, a member of a string set or list) or a number (a member of a number set or list), not ${kindOf(value)}`
        : `\`contains\` on SQLite takes a string (a substring), not ${kindOf(value)}`;
    case 'in':
      if (!Array.isArray(value) || value.length === 0)
        return `\`in\` takes a non-empty list of values, not ${Array.isArray(value) ? 'an empty list' : kindOf(value)}`;
      if (value.length > MAX_IN_VALUES) return `\`in\` takes at most ${MAX_IN_VALUES} values (DynamoDB's limit), got ${value.length}`;
      if (!value.every(isScalar)) return '`in` takes strings, numbers and booleans';
      return undefined;
    case 'type': {
      const names = TYPE_NAMES[backend];
      return typeof value === 'string' && (names as readonly string[]).includes(value as TypeName)
        ? undefined
        : `type \`${String(value)}\` is not a type of ${backend === 'sqlite' ? 'SQLite' : 'DynamoDB'}; use one of ${names.join(', ')}`;
    }
  }
}

/** Whether `a` comes after `b` in both databases' order (numbers by value, text by UTF-8 bytes). */
function orderedAfter(a: string | number, b: string | number): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a > b;
  return Buffer.compare(Buffer.from(String(a)), Buffer.from(String(b))) > 0;
}

/** The context roots a condition reads, each once, in order. */
export function conditionRoots(cond: Condition): string[] {
  return [...new Set(conditionRefs(cond).map((r) => r.root))];
}

/**
 * Why a value a condition or query key compares with would silently mean something else than it
 * seems, or undefined. Values there are compared as written, maps and lists deeply: a
 * `{{ template }}` anywhere in one is not rendered and a `${VAR}` is not expanded (only the
 * target and run settings read the environment).
 */
export function literalValueProblem(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  for (let seen = 0; stack.length > 0 && seen < 10_000; seen++) {
    const v = stack.pop();
    if (v !== null && typeof v === 'object') {
      stack.push(...(Array.isArray(v) ? v : Object.values(v)));
      continue;
    }
    if (typeof v !== 'string') continue;
    if (/\{\{[\s\S]*\}\}/.test(v)) {
      return `\`${v}\` would be compared as this very text: templates are not rendered in conditions and query keys. Write the value itself`;
    }
    if (/\$\{[^}]*\}/.test(v)) {
      return `\`${v}\` would be compared as this very text: \`\${VAR}\` is expanded only in the target and run settings. Write the value itself`;
    }
  }
  return undefined;
}
