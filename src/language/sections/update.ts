/**
 * The write section → `UpdatePlan`: exactly one of `update` (the key of the record to write,
 * `set`, `remove`, `touch`, overwrite rules), `delete` (the key of the record to delete) or
 * `create` (the key and `set` of a record created where none has the key).
 */
import type { LookupPlan, SourcePlan, Template, UpdatePlan, WriteAction } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import { templateRefs } from '../refs.js';
import type { FixSpec, UpdateSpec } from '../types.js';
import { type CompileScope, NOW, SQL_IDENT } from './scope.js';

/** The top-level sections that say what a fix writes; a fix has exactly one. */
export const WRITE_SECTIONS = ['update', 'delete', 'create'] as const;

/**
 * Compiles the write section; `needs` lists the context roots its templates read (for step
 * ordering and the unused-name check). A fix without a write section is DF103, with several DF261.
 */
export function compileUpdate(
  fix: FixSpec,
  source: SourcePlan,
  lookups: readonly LookupPlan[],
  scope: CompileScope,
): { plan: UpdatePlan; needs: string[] } {
  const present = WRITE_SECTIONS.filter((s) => fix[s] !== undefined);
  // None is the schema's "missing required key" (DF103), as when `update` was the only section.
  if (present.length === 0) {
    scope.error(
      'DF103',
      [],
      'missing required key `update` (a fix needs exactly one of `update`, `delete` and `create`, saying what it writes)',
    );
  } else if (present.length > 1) {
    scope.error(
      'DF261',
      [present[1] as string],
      `a fix has exactly one of update, delete and create; this one has ${present.join(' and ')}. Split it into one fix per write`,
      true,
    );
  }
  const section = present[0] ?? 'update';
  const action: WriteAction | undefined = section === 'update' ? undefined : section;
  // delete and create are updates without the parts they do not have.
  const u: UpdateSpec =
    section === 'update'
      ? (fix.update ?? { key: {} })
      : section === 'delete'
        ? { key: fix.delete?.key ?? {}, ...(fix.delete?.table !== undefined ? { table: fix.delete.table } : {}) }
        : {
            key: fix.create?.key ?? {},
            set: fix.create?.set ?? {},
            ...(fix.create?.table !== undefined ? { table: fix.create.table } : {}),
          };
  const backend = scope.backend;
  const needs = new Set<string>();
  const compileMap = (map: Record<string, unknown>, part: string): [string, Template][] => {
    const out: [string, Template][] = [];
    for (const [field, v] of Object.entries(map)) {
      const p: PathSegment[] = [section, part, field];
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
  const set = u.set ?? {};
  const remove = u.remove ?? [];
  const table = backend === 'sqlite' ? (u.table ?? (source.kind === 'table' ? source.table : undefined)) : undefined;
  if (backend === 'dynamodb' && u.table !== undefined) {
    scope.error('DF205', [section, 'table'], `a DynamoDB ${section} always writes the target table; remove \`table\``, true);
  }
  if (table && !SQL_IDENT.test(table)) scope.error('DF205', [section, 'table'], 'table must be a plain identifier');
  const key = compileMap(u.key, 'key');
  const setEntries = compileMap(set, 'set');
  const touchEntries = compileMap(u.touch ?? {}, 'touch');
  if (section === 'update' && Object.keys(set).length === 0 && remove.length === 0) {
    scope.error('DF260', ['update'], 'update needs `set` (fields to write) or `remove` (fields to remove), or both');
  }
  remove.forEach((f, i) => {
    if (backend === 'sqlite' && !SQL_IDENT.test(f))
      scope.error('DF205', ['update', 'remove', i], `column \`${f}\` must be a plain identifier`);
    const also = Object.hasOwn(set, f) ? 'set' : Object.hasOwn(u.touch ?? {}, f) ? 'touch' : Object.hasOwn(u.key, f) ? 'key' : undefined;
    if (also) scope.error('DF213', ['update', 'remove', i], `\`${f}\` is under both remove and ${also}; keep it in one`);
  });
  const overwriteList = Array.isArray(u.overwrite) ? u.overwrite : undefined;
  overwriteList?.forEach((f, i) => {
    if (!Object.hasOwn(set, f)) scope.error('DF211', ['update', 'overwrite', i], `\`${f}\` is not a field under update.set`);
  });
  for (const f of Object.keys(u.touch ?? {})) {
    if (Object.hasOwn(set, f)) scope.error('DF213', ['update', 'touch', f], `\`${f}\` is under both set and touch; keep it in one`, true);
  }
  // A literal null would write NULL (SQL NULL, a DynamoDB NULL attribute), which a dry run shows
  // much like "absent" and a fill-only field already counts as absent: refused, not guessed at.
  for (const [part, map] of [
    ['set', set],
    ['touch', u.touch ?? {}],
  ] as const) {
    for (const [f, v] of Object.entries(map)) {
      if (v === null) {
        scope.error(
          'DF215',
          [section, part, f],
          section === 'update'
            ? `\`${f}: null\` would write NULL; datafix does not write NULL or remove fields through ${part}. To remove the field (DynamoDB REMOVE, SQLite NULL), list it under update.remove: [${f}]; otherwise leave it out, or write a value`
            : `\`${f}: null\` would write NULL; datafix does not write NULL or remove fields through ${part}. Leave the field out of the record, or write a value`,
        );
      }
    }
  }
  for (const f of [...Object.keys(set), ...Object.keys(u.touch ?? {})]) {
    if (Object.hasOwn(u.key, f)) scope.error('DF213', [section, 'set', f], `\`${f}\` is part of the key and cannot be written`, true);
  }

  // The record's current values are already in the context when the key is exactly the key of
  // the source record (or of a lookup) on the same table; otherwise the engine fetches it. A
  // create always fetches: it writes only where the key names no record.
  const sameRecord = (root: string, rootTable: string | undefined): boolean =>
    rootTable === table &&
    key.length > 0 &&
    key.every(([k, t]) => t.kind === 'ref' && t.ref.root === root && t.ref.path.length === 1 && t.ref.path[0] === k);
  const sourceTable = source.kind === 'table' ? source.table : undefined;
  let before: UpdatePlan['before'] = { kind: 'fetch' };
  // An index holds only the attributes it projects: a delete's before-image (its guard, and what
  // undo creates again) must be the whole item, read from the table itself.
  const sourceHoldsWholeRecord = source.kind === 'table' || source.index === undefined || action !== 'delete';
  if (action !== 'create') {
    if (sourceHoldsWholeRecord && sameRecord(source.as, sourceTable)) before = { kind: 'context', root: source.as };
    else {
      const l = lookups.find((l) => l.kind !== 'list' && sameRecord(l.name, l.table));
      if (l) before = { kind: 'context', root: l.name };
    }
  }

  return {
    plan: {
      ...(action ? { action } : {}),
      ...(table !== undefined ? { table } : {}),
      key,
      set: setEntries.map(([field, t]) => ({
        field,
        template: t,
        overwrite: u.overwrite === true || (overwriteList?.includes(field) ?? false),
      })),
      ...(remove.length > 0 ? { remove: [...remove] } : {}),
      touch: touchEntries.map(([field, t]) => ({ field, template: t })),
      before,
    },
    needs: [...needs].filter((n) => n !== NOW),
  };
}
