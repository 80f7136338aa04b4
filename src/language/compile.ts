/**
 * Spec as written → FixPlan. Everything that can be known before touching data is decided here:
 * environment values, defaults, parsed templates and conditions, checked references and
 * JSONPaths, and the order of the per-page steps (each skip rule runs as soon as the data it
 * reads is there, and never before an earlier rule).
 *
 * Each spec section has its own compiler in ./sections/; this function only runs them in order
 * and checks what spans sections (unique and used names).
 */
import { DatafixError } from '../errors.js';
import { planRefs } from '../plan/refs.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import type { EnvSource } from './env.js';
import type { LoadedSpec } from './load.js';
import { compileExtracts } from './sections/extracts.js';
import { checkListLookupRefs } from './sections/list-lookups.js';
import { compileLookups } from './sections/lookups.js';
import { compileFailRules, compileSkipRules } from './sections/rules.js';
import { CompileScope, NOW } from './sections/scope.js';
import { compileSettings } from './sections/settings.js';
import { compileSource } from './sections/source.js';
import { orderSteps } from './sections/steps.js';
import { compileUpdate } from './sections/update.js';
import type { FixSpec } from './types.js';
import { validateSpec } from './validate.js';

export interface CompileOptions {
  /** Where `${VAR}` values come from; defaults to process.env. */
  readonly env?: EnvSource;
  /** Skips environment interpolation (validate/explain without the variables set). */
  readonly skipEnv?: boolean;
  /**
   * Runs the fix against this target instead of the spec's (fix tests on embedded engines);
   * the spec's target section is then not interpolated, so its variables need not be set.
   */
  readonly target?: TargetPlan;
}

/**
 * Validates (JSON Schema, then the language's own rules) and compiles a loaded spec.
 * @throws DatafixError (kind `spec`) carrying every diagnostic found, each with `file:line:col`.
 */
export function compileSpec(spec: LoadedSpec, options: CompileOptions = {}): FixPlan {
  const schemaDiags = validateSpec(spec);
  if (schemaDiags.length > 0) {
    throw new DatafixError('spec', schemaDiags[0]?.code ?? 'DF100', `${spec.file}: invalid spec`, schemaDiags);
  }
  const fix = spec.data as FixSpec;
  const scope = new CompileScope(spec, fix.target.sqlite ? 'sqlite' : 'dynamodb');
  const settings = compileSettings(fix, scope, options);

  // Names: the source alias, then lookups and extracts; each name once.
  const lookupNames = Object.keys(fix.lookups ?? {});
  const extractNames = Object.keys(fix.extract ?? {});
  if (fix.source.as === NOW) scope.error('DF209', ['source', 'as'], '`now` is reserved for the run timestamp; choose another name');
  scope.roots.set(fix.source.as, 'source');
  for (const [kind, names, section] of [
    ['lookup', lookupNames, 'lookups'],
    ['extract', extractNames, 'extract'],
  ] as const) {
    for (const n of names) {
      if (scope.roots.has(n))
        scope.error('DF209', [section, n], `name \`${n}\` is already used by the ${scope.roots.get(n)}; names must be unique`, true);
      else scope.roots.set(n, kind);
    }
  }

  const source = compileSource(fix, scope);
  const lookups = compileLookups(fix, scope);
  const extracts = compileExtracts(fix, scope);
  const skip = compileSkipRules(fix, scope);
  const fail = compileFailRules(fix, scope);
  const update = compileUpdate(fix, source, lookups, scope);
  const run = settings.run();
  checkListLookupRefs(
    lookups.filter((l) => l.kind === 'list'),
    planRefs({ lookups, extracts, skip, update: update.plan }),
    scope,
  );

  const used = new Set<string>([
    ...lookups.flatMap((l) => l.needs),
    ...extracts.flatMap((e) => e.needs),
    ...skip.flatMap((s) => s.needs),
    ...fail.flatMap((s) => s.needs),
    ...update.needs,
  ]);
  for (const n of [...lookupNames, ...extractNames]) {
    if (!used.has(n)) {
      const section = lookupNames.includes(n) ? 'lookups' : 'extract';
      scope.error('DF212', [section, n], `\`${n}\` is never used; reference it in a skip or fail rule or the update, or remove it`, true);
    }
  }

  if (scope.diags.length > 0) {
    throw new DatafixError('spec', scope.diags[0]?.code ?? 'DF200', `${spec.file}: invalid spec`, scope.diags);
  }

  return {
    planVersion: 1,
    fix: fix.name,
    ...(fix.description ? { description: fix.description } : {}),
    specChecksum: spec.checksum,
    target: settings.target,
    source,
    lookups,
    extracts,
    skip,
    ...(fail.length > 0 ? { fail } : {}),
    steps: orderSteps(lookups, extracts, skip, update.needs, update.plan, fail),
    update: update.plan,
    run,
  };
}
