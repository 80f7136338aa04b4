import type { Condition, Ref } from './types.js';

/**
 * Every reference a compiled condition mentions, in order; with `comparedOnly`, only those
 * compared with a value by the column's collation (`equals` and the comparisons; not the presence
 * and `type` tests).
 */
export function conditionRefs(cond: Condition, comparedOnly = false): Ref[] {
  switch (cond.op) {
    case 'equals':
      return cond.pairs.map((p) => p.ref);
    case 'all':
    case 'any':
      return cond.of.flatMap((c) => conditionRefs(c, comparedOnly));
    case 'not':
      return conditionRefs(cond.of, comparedOnly);
    case 'expr':
      return comparedOnly ? [] : [...(cond.expr.reads ?? cond.expr.roots.map((root) => ({ root, path: [], text: root })))];
    case 'exists':
    case 'missing':
    case 'isNull':
    case 'notNull':
      return comparedOnly ? [] : [...cond.refs];
    case 'type':
      return comparedOnly ? [] : cond.tests.map((t) => t.ref);
    default:
      return cond.tests.map((t) => t.ref);
  }
}
