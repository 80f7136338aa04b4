/** The `extract` section → `ExtractPlan[]`: JSONPath reads from a context value (JSON text or a map). */
import type { ExtractPlan } from '../../plan/types.js';
import { checkJsonPath } from '../jsonpath.js';
import type { PathSegment } from '../load.js';
import type { FixSpec } from '../types.js';
import { compileExpr } from './expressions.js';
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
    const then = spec.then !== undefined ? compileThen(spec.then, name, index, extractNames, scope) : undefined;
    if (from && (spec.then === undefined || then)) {
      const needs = [...new Set([from.root, ...(then?.roots ?? [])])].filter((n) => n !== NOW && n !== EXTRACTED);
      extracts.push({ name, from, ...(spec.parse ? { parse: spec.parse } : {}), paths, ...(then ? { then } : {}), needs });
    }
  });
  return extracts;
}

/** The name an extract's `then` reads the extracted value by. */
export const EXTRACTED = 'value';

/**
 * An extract's `then`: an expression over the extracted value (`value`) and the names the
 * extract may read (the source, lookups, earlier extracts, `now`).
 */
function compileThen(text: string, name: string, index: number, extractNames: readonly string[], scope: CompileScope) {
  const p: PathSegment[] = ['extract', name, 'then'];
  if (scope.roots.has(EXTRACTED)) {
    scope.error('DF237', p, `\`then\` reads the extracted value as \`${EXTRACTED}\`, which this spec already names; rename that one`, true);
    return undefined;
  }
  const expr = compileExpr(text, p, 0, scope, { extra: [EXTRACTED] });
  if (!expr) return undefined;
  for (const root of expr.roots.filter((r) => r !== EXTRACTED)) {
    scope.checkRoot({ root, path: [], text: root }, p, (r) => {
      if (r === name) return `\`then\` reads the extracted value as \`${EXTRACTED}\`, not as \`${name}\``;
      const ei = extractNames.indexOf(r);
      if (ei > index) return `extract \`${name}\` reads extract \`${r}\`, which is declared after it; move \`${r}\` above`;
      return undefined;
    });
  }
  return expr;
}
