/** The `lookups` section → `LookupPlan[]`: records fetched by a key rendered from the context. */
import type { LookupPlan, Template } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import { templateRefs } from '../refs.js';
import type { FixSpec } from '../types.js';
import { type CompileScope, NOW, SQL_IDENT } from './scope.js';

/**
 * Compiles every lookup in declaration order. A lookup's key may use the source, `now` and
 * lookups declared above it (never extracts: they run after the lookups they read from).
 */
export function compileLookups(fix: FixSpec, scope: CompileScope): LookupPlan[] {
  const lookupNames = Object.keys(fix.lookups ?? {});
  const lookups: LookupPlan[] = [];
  lookupNames.forEach((name, index) => {
    const spec = fix.lookups?.[name];
    if (!spec) return;
    const key: [string, Template][] = [];
    const needs = new Set<string>();
    for (const [k, v] of Object.entries(spec.get)) {
      const p: PathSegment[] = ['lookups', name, 'get', k];
      const t = scope.template(v, p);
      if (!t) continue;
      for (const r of templateRefs(t)) {
        scope.checkRoot(r, p, (root) => {
          if (root === name) return `lookup \`${name}\` cannot use itself`;
          const li = lookupNames.indexOf(root);
          if (li > index)
            return `lookup \`${name}\` uses lookup \`${root}\`, which is declared after it; move \`${root}\` above \`${name}\``;
          if (scope.roots.get(root) === 'extract')
            return `lookup \`${name}\` cannot use extract \`${root}\`; lookups may use the source, earlier lookups and now`;
          return undefined;
        });
        needs.add(r.root);
      }
      key.push([k, t]);
    }
    if (scope.backend === 'sqlite') {
      if (!spec.table) scope.error('DF205', ['lookups', name], 'a SQLite lookup needs `table`', true);
      else if (!SQL_IDENT.test(spec.table)) scope.error('DF205', ['lookups', name, 'table'], 'table must be a plain identifier');
      for (const k of Object.keys(spec.get)) {
        if (!SQL_IDENT.test(k)) scope.error('DF205', ['lookups', name, 'get', k], `column \`${k}\` must be a plain identifier`, true);
      }
    }
    lookups.push({
      name,
      ...(spec.table ? { table: spec.table } : {}),
      key,
      consistentRead: spec.consistentRead ?? false,
      needs: [...needs].filter((n) => n !== NOW),
    });
  });
  return lookups;
}
