import type { Condition, Ref } from './types.js';

/** Every reference a compiled condition mentions, in order. */
export function conditionRefs(cond: Condition): Ref[] {
  switch (cond.op) {
    case 'equals':
      return cond.pairs.map((p) => p.ref);
    case 'all':
    case 'any':
      return cond.of.flatMap(conditionRefs);
    case 'not':
      return conditionRefs(cond.of);
    default:
      return [...cond.refs];
  }
}
