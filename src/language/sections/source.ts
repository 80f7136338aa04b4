/** The `source` section → `SourcePlan`: a SQLite table (with `where`) or a DynamoDB query or scan. */
import { conditionRefs } from '../../plan/conditions.js';
import type { SortKeyOp, SourcePlan } from '../../plan/types.js';
import type { PathSegment } from '../load.js';
import type { ConditionSpec, FixSpec, SortKeyConditionSpec } from '../types.js';
import { compileCondition, literalValueProblem, type RefCheck } from './conditions.js';
import { type CompileScope, SQL_IDENT } from './scope.js';

/** Compiles the source reader; problems go to `scope` (the returned plan is then not used). */
export function compileSource(fix: FixSpec, scope: CompileScope): SourcePlan {
  const s = fix.source;
  const readers = (['table', 'query', 'scan'] as const).filter((k) => s[k] !== undefined);
  if (readers.length !== 1) {
    scope.error(
      'DF205',
      ['source'],
      `source needs exactly one reader: \`table\` (SQLite), \`query\` or \`scan\` (DynamoDB); found ${readers.length ? readers.join(', ') : 'none'}`,
    );
  }
  // In `where` and `filter` a reference names a column or attribute, not a context value. A
  // DynamoDB filter reads `item.PK` as the attribute path item → PK, which the items of a fix
  // that calls its records `item` almost never have: it would silently match nothing.
  const aliasPrefix: RefCheck = (r, path) => {
    if (scope.backend === 'dynamodb' && r.root === s.as && r.path.length > 0) {
      const bare = `${r.path[0]}${r.path.length > 1 ? '…' : ''}`;
      scope.error(
        'DF205',
        path,
        `\`${r.text}\` starts with the source's name \`${s.as}\`, but a filter names attributes of the item itself: write \`${bare}\`, not \`${r.text}\``,
        true,
      );
    }
  };
  const fieldCondition = (cond: ConditionSpec | undefined, path: PathSegment[]) =>
    cond ? compileCondition(cond, path, scope, aliasPrefix, scope.backend === 'sqlite' ? 'where' : 'filter') : undefined;

  if (scope.backend === 'sqlite') {
    if (s.query || s.scan)
      scope.error(
        'DF205',
        ['source', s.query ? 'query' : 'scan'],
        'a SQLite target reads with `table` and `where`; `query` and `scan` are DynamoDB readers',
        true,
      );
    const where = fieldCondition(s.where, ['source', 'where']);
    if (where) {
      for (const r of conditionRefs(where)) {
        if (r.path.length > 0 || !SQL_IDENT.test(r.root)) {
          scope.error('DF205', ['source', 'where'], `\`${r.text}\` is not a column name; \`where\` takes plain column names`);
        }
      }
    }
    return { kind: 'table', as: s.as, table: s.table ?? '', ...(where ? { where } : {}) };
  }
  if (s.table !== undefined || s.where !== undefined) {
    scope.error(
      'DF205',
      ['source', s.table !== undefined ? 'table' : 'where'],
      'a DynamoDB target reads with `query` or `scan`; `table`/`where` are SQLite readers',
      true,
    );
  }
  if (s.scan) {
    return {
      kind: 'scan',
      as: s.as,
      ...(s.scan.index ? { index: s.scan.index } : {}),
      ...(s.scan.filter ? { filter: fieldCondition(s.scan.filter, ['source', 'scan', 'filter']) } : {}),
      segments: s.scan.segments ?? 1,
      consistentRead: s.scan.consistentRead ?? false,
    };
  }
  const q = s.query ?? { key: {} };
  let partitionKey: { name: string; value: string | number } | undefined;
  let sortKey: { name: string; op: SortKeyOp; values: (string | number)[] } | undefined;
  for (const [name, v] of Object.entries(q.key)) {
    const problem = literalValueProblem(v);
    if (problem) scope.error('DF214', ['source', 'query', 'key', name], problem);
    if (typeof v === 'string' || typeof v === 'number') {
      if (partitionKey) {
        if (sortKey)
          scope.error('DF206', ['source', 'query', 'key', name], 'a query key has one partition key and at most one sort key', true);
        else sortKey = { name, op: 'equals', values: [v] };
      } else partitionKey = { name, value: v };
    } else {
      if (sortKey) scope.error('DF206', ['source', 'query', 'key', name], 'a query key has at most one sort-key condition', true);
      const [op, arg] = Object.entries(v as SortKeyConditionSpec)[0] ?? [];
      sortKey = { name, op: op as SortKeyOp, values: Array.isArray(arg) ? arg : [arg as string | number] };
    }
  }
  if (!partitionKey) {
    scope.error('DF206', ['source', 'query', 'key'], 'a query needs the partition key as `name: value`');
    partitionKey = { name: '', value: '' };
  }
  return {
    kind: 'query',
    as: s.as,
    ...(q.index ? { index: q.index } : {}),
    partitionKey,
    ...(sortKey ? { sortKey } : {}),
    newestFirst: q.newestFirst ?? false,
    ...(q.filter ? { filter: fieldCondition(q.filter, ['source', 'query', 'filter']) } : {}),
    consistentRead: q.consistentRead ?? false,
  };
}
