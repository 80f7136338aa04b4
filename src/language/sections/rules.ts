/** The `skip` section → `SkipRulePlan[]`: named conditions that leave a record unwritten. */
import { ENGINE_REASONS } from '../../plan/reasons.js';
import type { SkipRulePlan } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import type { FixSpec } from '../types.js';
import { compileCondition, conditionRoots } from './conditions.js';
import { type CompileScope, NOW } from './scope.js';

/** Engine-reserved reasons, so a user rule cannot be confused with them in a summary. */
export const RESERVED_REASONS: ReadonlySet<string> = new Set(ENGINE_REASONS);

/** Compiles the skip rules in written order; reasons must be unique and not reserved (DF210). */
export function compileSkipRules(fix: FixSpec, scope: CompileScope): SkipRulePlan[] {
  const skip: SkipRulePlan[] = [];
  (fix.skip ?? []).forEach((rule, i) => {
    const p: PathSegment[] = ['skip', i];
    if (RESERVED_REASONS.has(rule.reason)) {
      scope.error('DF210', [...p, 'reason'], `reason \`${rule.reason}\` is reserved for the engine; choose another name`);
    }
    if (fix.skip?.findIndex((r) => r.reason === rule.reason) !== i) {
      scope.error('DF210', [...p, 'reason'], `reason \`${rule.reason}\` is used by an earlier rule; reasons must be unique`);
    }
    const when = compileCondition(rule.when, [...p, 'when'], scope, (r, path) => scope.checkRoot(r, path));
    if (when) skip.push({ reason: rule.reason, when, needs: conditionRoots(when).filter((n) => n !== NOW) });
  });
  return skip;
}
