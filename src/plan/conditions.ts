import type { Condition, FixPlan, Ref } from './types.js';

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
    default:
      return comparedOnly ? [] : [...cond.refs];
  }
}

/**
 * The `[table, column]` a reference names when it is a whole column of a row read from a table
 * (`row.email` for the source `row` of a SQLite table, `cust.country` for a lookup of table
 * `customers`), so it compares as that column does; undefined for anything else (a DynamoDB item,
 * a path inside a value, an extract).
 */
export function columnOfRef(plan: FixPlan, ref: Ref): readonly [string, string] | undefined {
  const [column] = ref.path;
  if (column === undefined || ref.path.length > 1 || ref.indexes?.length) return undefined;
  if (plan.source.kind === 'table' && ref.root === plan.source.as) return [plan.source.table, column];
  const lookup = plan.lookups.find((l) => l.name === ref.root);
  return lookup?.table !== undefined && plan.target.backend === 'sqlite' ? [lookup.table, column] : undefined;
}
