/** The `extract` section → `ExtractPlan[]`: JSONPath reads from a context value (JSON text or a map). */
import type { ExtractPlan } from '../../plan/types.js';
import { checkJsonPath } from '../jsonpath.js';
import type { PathSegment } from '../load.js';
import type { FixSpec } from '../types.js';
import { type CompileScope, NOW } from './scope.js';

/** Compiles every extract in declaration order; an extract may read earlier extracts, never later ones. */
export function compileExtracts(fix: FixSpec, scope: CompileScope): ExtractPlan[] {
  const extractNames = Object.keys(fix.extract ?? {});
  const extracts: ExtractPlan[] = [];
  extractNames.forEach((name, index) => {
    const spec = fix.extract?.[name];
    if (!spec) return;
    const p: PathSegment[] = ['extract', name];
    const from = scope.ref(spec.from, [...p, 'from']);
    if (from) {
      scope.checkRoot(from, [...p, 'from'], (root) => {
        if (root === name) return `extract \`${name}\` cannot read itself`;
        if (root === NOW) return 'extract from `now` is not useful; reference now directly';
        const ei = extractNames.indexOf(root);
        if (ei > index) return `extract \`${name}\` reads extract \`${root}\`, which is declared after it; move \`${root}\` above`;
        return undefined;
      });
    }
    const paths = spec.first ?? (spec.path !== undefined ? [spec.path] : []);
    if (paths.length === 0) scope.error('DF203', p, 'an extract needs `path` or `first`', true);
    if (spec.first && spec.path !== undefined) scope.error('DF203', p, 'use either `path` or `first`, not both', true);
    paths.forEach((jp, i) => {
      const problem = checkJsonPath(jp);
      if (problem) scope.error(problem.code, spec.first ? [...p, 'first', i] : [...p, 'path'], problem.message);
    });
    if (from) {
      extracts.push({ name, from, ...(spec.parse ? { parse: spec.parse } : {}), paths, needs: [from.root] });
    }
  });
  return extracts;
}
