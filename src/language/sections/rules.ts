/**
 * The `skip` and `fail` sections → `SkipRulePlan[]` / `FailRulePlan[]`: named conditions that
 * leave a record unwritten, counted as skipped or as failed with the rule's reason.
 */
import { ENGINE_REASONS } from '../../plan/reasons.js';
import type { SkipRulePlan } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import type { FixSpec, SkipRuleSpec } from '../types.js';
import { compileCondition, conditionRoots } from './conditions.js';
import { type CompileScope, NOW } from './scope.js';

/** Engine-reserved reasons, so a user rule cannot be confused with them in a summary. */
export const RESERVED_REASONS: ReadonlySet<string> = new Set(ENGINE_REASONS);

/**
 * Compiles the rules of `section` in written order; a reason must be unique across skip and fail
 * rules (one count in a summary means one rule) and not reserved (DF210).
 */
function compileRules(fix: FixSpec, section: 'skip' | 'fail', scope: CompileScope): SkipRulePlan[] {
  const out: SkipRulePlan[] = [];
  const all: { section: string; rule: SkipRuleSpec }[] = [
    ...(fix.skip ?? []).map((rule) => ({ section: 'skip', rule })),
    ...(fix.fail ?? []).map((rule) => ({ section: 'fail', rule })),
  ];
  (fix[section] ?? []).forEach((rule, i) => {
    const p: PathSegment[] = [section, i];
    if (RESERVED_REASONS.has(rule.reason)) {
      scope.error('DF210', [...p, 'reason'], `reason \`${rule.reason}\` is reserved for the engine; choose another name`);
    }
    const first = all.find((r) => r.rule.reason === rule.reason);
    if (first && first.rule !== rule) {
      const where = first.section === section ? 'an earlier rule' : `a ${first.section} rule`;
      scope.error(
        'DF210',
        [...p, 'reason'],
        `reason \`${rule.reason}\` is used by ${where}; reasons must be unique across skip and fail rules`,
      );
    }
    const when = compileCondition(rule.when, [...p, 'when'], scope, (r, path) => scope.checkRoot(r, path));
    if (when) out.push({ reason: rule.reason, when, needs: conditionRoots(when).filter((n) => n !== NOW) });
  });
  return out;
}

/** Compiles the skip rules in written order. */
export function compileSkipRules(fix: FixSpec, scope: CompileScope): SkipRulePlan[] {
  return compileRules(fix, 'skip', scope);
}

/** Compiles the fail rules in written order; they run after every skip rule. */
export function compileFailRules(fix: FixSpec, scope: CompileScope): SkipRulePlan[] {
  return compileRules(fix, 'fail', scope);
}
