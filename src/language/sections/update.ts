/** The `update` section → `UpdatePlan`: the key of the record to write, `set`, `touch`, overwrite rules. */
import type { LookupPlan, SourcePlan, Template, UpdatePlan } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import { templateRefs } from '../refs.js';
import type { FixSpec } from '../types.js';
import { type CompileScope, NOW, SQL_IDENT } from './scope.js';

/**
 * Compiles the update; `needs` lists the context roots its templates read (for step ordering and
 * the unused-name check).
 */
export function compileUpdate(
  fix: FixSpec,
  source: SourcePlan,
  lookups: readonly LookupPlan[],
  scope: CompileScope,
): { plan: UpdatePlan; needs: string[] } {
  const backend = scope.backend;
  const u = fix.update;
  const needs = new Set<string>();
  const compileMap = (map: Record<string, unknown>, section: string): [string, Template][] => {
    const out: [string, Template][] = [];
    for (const [field, v] of Object.entries(map)) {
      const p: PathSegment[] = ['update', section, field];
      if (backend === 'sqlite' && !SQL_IDENT.test(field)) {
        scope.error('DF205', p, `column \`${field}\` must be a plain identifier`, true);
      }
      const t = scope.template(v, p);
      if (!t) continue;
      for (const r of templateRefs(t)) {
        scope.checkRoot(r, p);
        needs.add(r.root);
      }
      out.push([field, t]);
    }
    return out;
  };
  const table = backend === 'sqlite' ? (u.table ?? (source.kind === 'table' ? source.table : undefined)) : undefined;
  if (backend === 'dynamodb' && u.table !== undefined) {
    scope.error('DF205', ['update', 'table'], 'a DynamoDB update always writes the target table; remove `table`', true);
  }
  if (table && !SQL_IDENT.test(table)) scope.error('DF205', ['update', 'table'], 'table must be a plain identifier');
  const key = compileMap(u.key, 'key');
  const setEntries = compileMap(u.set, 'set');
  const touchEntries = compileMap(u.touch ?? {}, 'touch');
  const overwriteList = Array.isArray(u.overwrite) ? u.overwrite : undefined;
  overwriteList?.forEach((f, i) => {
    if (!Object.hasOwn(u.set, f)) scope.error('DF211', ['update', 'overwrite', i], `\`${f}\` is not a field under update.set`);
  });
  for (const f of Object.keys(u.touch ?? {})) {
    if (Object.hasOwn(u.set, f)) scope.error('DF213', ['update', 'touch', f], `\`${f}\` is under both set and touch; keep it in one`, true);
  }
  // A literal null would write NULL (SQL NULL, a DynamoDB NULL attribute), which a dry run shows
  // much like "absent" and a fill-only field already counts as absent: refused, not guessed at.
  for (const [section, map] of [
    ['set', u.set],
    ['touch', u.touch ?? {}],
  ] as const) {
    for (const [f, v] of Object.entries(map)) {
      if (v === null) {
        scope.error(
          'DF215',
          ['update', section, f],
          `\`${f}: null\` would write NULL; datafix does not write NULL or remove fields. Leave the field out, or write a value`,
        );
      }
    }
  }
  for (const f of [...Object.keys(u.set), ...Object.keys(u.touch ?? {})]) {
    if (Object.hasOwn(u.key, f)) scope.error('DF213', ['update', 'set', f], `\`${f}\` is part of the key and cannot be written`, true);
  }

  // The record's current values are already in the context when the update key is exactly the
  // key of the source record (or of a lookup) on the same table; otherwise the engine fetches it.
  const sameRecord = (root: string, rootTable: string | undefined): boolean =>
    rootTable === table &&
    key.length > 0 &&
    key.every(([k, t]) => t.kind === 'ref' && t.ref.root === root && t.ref.path.length === 1 && t.ref.path[0] === k);
  const sourceTable = source.kind === 'table' ? source.table : undefined;
  let before: UpdatePlan['before'] = { kind: 'fetch' };
  if (sameRecord(source.as, sourceTable)) before = { kind: 'context', root: source.as };
  else {
    const l = lookups.find((l) => l.kind !== 'list' && sameRecord(l.name, l.table));
    if (l) before = { kind: 'context', root: l.name };
  }

  return {
    plan: {
      ...(table !== undefined ? { table } : {}),
      key,
      set: setEntries.map(([field, t]) => ({
        field,
        template: t,
        overwrite: u.overwrite === true || (overwriteList?.includes(field) ?? false),
      })),
      touch: touchEntries.map(([field, t]) => ({ field, template: t })),
      before,
    },
    needs: [...needs].filter((n) => n !== NOW),
  };
}
