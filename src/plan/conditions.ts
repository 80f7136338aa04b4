import type { Condition, Ref } from './types.js';

/**
 * Every reference a compiled condition mentions, in order; with `comparedOnly`, only those of
 * `equals` pairs (the references compared with a value, not merely tested for presence).
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
    default:
      return comparedOnly ? [] : [...cond.refs];
  }
}
