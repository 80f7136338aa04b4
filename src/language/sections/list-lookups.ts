/**
 * Lookups of several records: a DynamoDB `query` (partition key and an optional sort-key
 * condition, their values templates rendered per record) or a SQLite `where` on another table
 * (`equals` values at its top may be templates, bound per record, never SQL text). Each is
 * bounded by `max`. The engine batches them per page where the backend can (see
 * ListLookupRequest in src/adapters/types.ts).
 */
import type { PlacedRef } from '../../plan/refs.js';
import type { Condition, ListLookupPlan, SortKeyOp, Template } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import type { ConditionSpec, LookupSpec } from '../types.js';
import { compileCondition } from './conditions.js';
import type { LookupTemplate } from './lookups.js';
import { type CompileScope, SQL_IDENT } from './scope.js';

const SORT_KEY_OPS: readonly SortKeyOp[] = ['equals', 'beginsWith', 'between', 'lt', 'lte', 'gt', 'gte'];

const holdsTemplate = (value: unknown): boolean => JSON.stringify(value ?? null).includes('{{');

/** Compiles a `query` or `where` lookup; undefined (with diagnostics in `scope`) when it cannot be. */
export function compileListLookup(
  name: string,
  spec: LookupSpec,
  scope: CompileScope,
  template: LookupTemplate,
): Omit<ListLookupPlan, 'needs'> | undefined {
  const at: PathSegment[] = ['lookups', name];
  const form: 'query' | 'where' = spec.query !== undefined ? 'query' : 'where';
  if (spec.max === undefined) {
    scope.error(
      'DF270',
      at,
      `a lookup of several records needs \`max\`, the most records one ${scope.backend === 'sqlite' ? 'row' : 'item'} may have (a record with more fails with reason lookup_over_max)`,
      true,
    );
  }
  const max = spec.max ?? 1;
  const common = { kind: 'list' as const, name, by: form, max, consistentRead: spec.consistentRead ?? false };
  if (form === 'query') {
    if (scope.backend === 'sqlite') {
      scope.error('DF205', [...at, 'query'], 'a SQLite lookup of several rows uses `table` and `where`; `query` is for DynamoDB', true);
      return undefined;
    }
    const q = spec.query ?? { key: {} };
    const match: [string, Template][] = [];
    let sortKey: ListLookupPlan['sortKey'];
    for (const [attr, v] of Object.entries(q.key)) {
      const p: PathSegment[] = [...at, 'query', 'key', attr];
      const isCondition = v !== null && typeof v === 'object' && !Array.isArray(v);
      if (match.length === 0 && !isCondition) {
        const t = template(v, p);
        if (t) match.push([attr, t]);
        continue;
      }
      if (match.length === 0 || sortKey) {
        scope.error(
          'DF206',
          p,
          match.length === 0
            ? 'write the partition key first, as `name: value`'
            : 'a query key has one partition key and at most one sort key',
          true,
        );
        continue;
      }
      const [op, arg] = isCondition ? (Object.entries(v as Record<string, unknown>)[0] ?? []) : ['equals', v];
      if (!SORT_KEY_OPS.includes(op as SortKeyOp)) continue; // the schema reported it
      const args = op === 'between' ? (Array.isArray(arg) ? arg : []) : [arg];
      const values = args.map((a, i) => template(a, isCondition ? [...p, op as string, ...(op === 'between' ? [i] : [])] : p));
      if (values.every((t): t is Template => t !== undefined)) sortKey = { name: attr, op: op as SortKeyOp, values };
    }
    if (match.length === 0) {
      scope.error('DF206', [...at, 'query', 'key'], 'a query needs the partition key as `name: value`');
      return undefined;
    }
    return {
      ...common,
      ...(spec.table ? { table: spec.table } : {}),
      ...(q.index ? { index: q.index } : {}),
      match,
      ...(sortKey ? { sortKey } : {}),
    };
  }

  if (scope.backend === 'dynamodb') {
    scope.error(
      'DF205',
      [...at, 'where'],
      'a DynamoDB lookup of several items uses `query` (a partition key and a sort-key condition); `where` is for SQLite',
      true,
    );
    return undefined;
  }
  if (!spec.table) scope.error('DF205', at, 'a SQLite lookup needs `table`', true);
  else if (!SQL_IDENT.test(spec.table)) scope.error('DF205', [...at, 'table'], 'table must be a plain identifier');
  const split = splitWhere(spec.where ?? {}, [...at, 'where'], scope, template);
  if (!split) return undefined;
  return { ...common, table: spec.table ?? '', match: split.match, ...(split.where ? { where: split.where } : {}) };
}

/**
 * Splits a lookup's `where` into the equalities rendered per record (an `equals` whose value is a
 * template, at the top or directly under a top `all`: the engine binds a whole page of them in one
 * statement) and a condition that is the same for every record. A template anywhere else is DF271.
 */
function splitWhere(
  where: ConditionSpec,
  path: PathSegment[],
  scope: CompileScope,
  template: LookupTemplate,
): { match: [string, Template][]; where?: Condition } | undefined {
  const parts: [ConditionSpec, PathSegment[]][] = where.all ? where.all.map((c, i) => [c, [...path, 'all', i]]) : [[where, path]];
  const match: [string, Template][] = [];
  const fixed: Condition[] = [];
  let ok = true;
  const column = (name: string, p: PathSegment[]): void => {
    if (!SQL_IDENT.test(name)) {
      scope.error('DF205', p, `\`${name}\` is not a column name; a lookup's \`where\` takes plain column names`, true);
      ok = false;
    }
  };
  const constant = (c: ConditionSpec, p: PathSegment[]): void => {
    // SQLite runs this `where`: an expression in it is refused (DF234) as in `source.where`.
    const compiled = compileCondition(
      c,
      p,
      scope,
      (r, rp) => {
        if (r.path.length > 0) column(r.text, rp);
        else column(r.root, rp);
      },
      'where',
    );
    if (compiled) fixed.push(compiled);
    else ok = false;
  };
  for (const [c, p] of parts) {
    if (c.equals !== undefined && Object.keys(c).length === 1) {
      const same: Record<string, unknown> = {};
      for (const [col, v] of Object.entries(c.equals)) {
        if (!holdsTemplate(v)) {
          same[col] = v;
          continue;
        }
        column(col, [...p, 'equals', col]);
        const t = template(v, [...p, 'equals', col]);
        if (t) match.push([col, t]);
        else ok = false;
      }
      if (Object.keys(same).length > 0) constant({ equals: same }, p);
    } else if (holdsTemplate(c)) {
      scope.error(
        'DF271',
        p,
        'a template may stand only as an `equals` value at the top of a lookup\'s `where` (or directly under its `all`), such as `equals: { post_id: "{{ row.id }}" }`; write the other tests with values',
      );
      ok = false;
    } else constant(c, p);
  }
  if (!ok) return undefined;
  const cond: Condition | undefined = fixed.length === 0 ? undefined : fixed.length === 1 ? fixed[0] : { op: 'all', of: fixed };
  return { match, ...(cond ? { where: cond } : {}) };
}

/**
 * DF272 for every reference into a lookup of several records that does not start with a list
 * position: `comments.body` would always be missing (the lookup is a list); `comments[0].body`
 * reads the first record's `body`, and `comments` the whole list.
 */
export function checkListLookupRefs(lists: readonly ListLookupPlan[], refs: readonly PlacedRef[], scope: CompileScope): void {
  const names = new Set(lists.map((l) => l.name));
  for (const { ref, at } of refs) {
    if (!names.has(ref.root) || ref.path.length === 0 || ref.indexes?.includes(0)) continue;
    scope.error(
      'DF272',
      [...at],
      `\`${ref.text}\`: lookup \`${ref.root}\` is a list of records; read one by its position, such as \`${ref.root}[0].${ref.path[0]}\`, use the whole list \`${ref.root}\`, or count it with the expression \`size(${ref.root})\``,
    );
  }
}
