/**
 * The `lookups` section → `LookupPlan[]`: one record fetched by a key rendered from the context
 * (`get`), or every record that matches (`query` on DynamoDB, `where` on SQLite; see
 * list-lookups.ts).
 */
import type { LookupPlan, Template } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import { templateRefs } from '../refs.js';
import type { FixSpec } from '../types.js';
import { compileListLookup } from './list-lookups.js';
import { type CompileScope, NOW, SQL_IDENT } from './scope.js';

/**
 * Parses one template of a lookup, checking that it uses only what is known before the lookup
 * runs, and adds the roots it reads to `needs`; undefined (with a diagnostic) when it does not parse.
 */
export type LookupTemplate = (value: unknown, path: PathSegment[]) => Template | undefined;

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
    const needs = new Set<string>();
    const template: LookupTemplate = (v, p) => {
      const t = scope.template(v, p);
      if (!t) return undefined;
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
      return t;
    };
    const neededRoots = () => [...needs].filter((n) => n !== NOW);
    const forms = (['get', 'query', 'where'] as const).filter((k) => spec[k] !== undefined);
    if (forms.length !== 1) {
      scope.error(
        'DF270',
        ['lookups', name],
        `a lookup needs exactly one of \`get\` (one record by its key), \`query\` (DynamoDB: every item that matches) or \`where\` (SQLite: every row that matches); found ${forms.length ? forms.join(', ') : 'none'}`,
        true,
      );
      return;
    }
    if (!spec.get) {
      const list = compileListLookup(name, spec, scope, template);
      if (list) lookups.push({ ...list, needs: neededRoots() });
      return;
    }
    if (spec.max !== undefined) {
      scope.error(
        'DF270',
        ['lookups', name, 'max'],
        '`max` bounds a lookup of several records (`query` or `where`); a `get` finds one record at most',
        true,
      );
    }
    const key: [string, Template][] = [];
    for (const [k, v] of Object.entries(spec.get)) {
      const t = template(v, ['lookups', name, 'get', k]);
      if (t) key.push([k, t]);
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
      needs: neededRoots(),
    });
  });
  return lookups;
}
