/**
 * Structured conditions (`exists`, `equals`, `all`, …) as written → `Condition`. The same
 * compiler serves SQL `where`, DynamoDB `filter` (where a reference names a column/attribute)
 * and skip rules (where it names a context value); the caller says how references are checked.
 */
import { conditionRefs } from '../../plan/conditions.js';
import type { Condition, Ref } from '../../plan/types.js';
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
          `an expression cannot be part of \`${pushdown}\`: the database evaluates it, and it cannot run CEL. Use the structured conditions there (exists, missing, isNull, notNull, equals, all, any, not), and put the expression in a skip rule`,
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
      scope.error('DF106', path, 'a condition needs exactly one of: exists, missing, isNull, notNull, equals, all, any, not, expr');
      return undefined;
  }
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
