/** The order of the per-page pipeline, decided once from what each step reads. */
import type { ExtractPlan, LookupPlan, SkipRulePlan, Step, UpdatePlan } from '../../plan/types.js';

/**
 * Orders the per-page steps: skip rules keep their written order, then fail rules theirs (a record
 * skipped, as already done or out of scope, is never failed); before each rule come the lookups
 * and extracts it needs (and theirs), so records a cheap rule skips never cost a lookup.
 */
export function orderSteps(
  lookups: readonly LookupPlan[],
  extracts: readonly ExtractPlan[],
  skip: readonly SkipRulePlan[],
  updateNeeds: readonly string[],
  update: UpdatePlan,
  fail: readonly SkipRulePlan[] = [],
): Step[] {
  const steps: Step[] = [];
  const done = new Set<string>();
  const ensure = (name: string): void => {
    if (done.has(name)) return;
    done.add(name);
    const l = lookups.find((x) => x.name === name);
    if (l) {
      l.needs.forEach(ensure);
      steps.push({ kind: 'lookup', name });
      return;
    }
    const e = extracts.find((x) => x.name === name);
    if (e) {
      e.needs.forEach(ensure);
      steps.push({ kind: 'extract', name });
    }
  };
  skip.forEach((rule, index) => {
    rule.needs.forEach(ensure);
    steps.push({ kind: 'skip', index });
  });
  fail.forEach((rule, index) => {
    rule.needs.forEach(ensure);
    steps.push({ kind: 'fail', index });
  });
  updateNeeds.forEach(ensure);
  if (update.before.kind === 'fetch') steps.push({ kind: 'fetchTarget' });
  return steps;
}
