/**
 * Table descriptions (cached per adapter) and the pre-flight check of a plan against them, so a
 * wrong table, index or key is reported before the first item is read.
 */
import type { DescribeTableCommandOutput } from '@aws-sdk/client-dynamodb';
import { DatafixError, targetMismatch } from '../../errors.js';
import { conditionRefs } from '../../plan/conditions.js';
import type { FixPlan, ListLookupPlan } from '../../plan/types.js';
import { environmentError, isAbort, isResourceNotFound, messageOf } from './failures.js';

export interface KeySchema {
  readonly partitionKey: string;
  readonly sortKey?: string;
}

export interface IndexInfo extends KeySchema {
  readonly name: string;
  readonly kind: 'global' | 'local';
  readonly status?: string;
  /** ALL, KEYS_ONLY or INCLUDE (then `included` lists the extra attributes). */
  readonly projection: string;
  readonly included: readonly string[];
  /** DescribeTable's count of the index's items, refreshed about every six hours. */
  readonly itemCount?: number;
}

export interface TableInfo extends KeySchema {
  readonly name: string;
  /** Primary-key attribute names, partition key first. */
  readonly keyNames: readonly string[];
  /** Declared type (`S`, `N` or `B`) of each attribute in AttributeDefinitions, key attributes included. */
  readonly keyTypes: Readonly<Record<string, string>>;
  readonly status?: string;
  readonly indexes: ReadonlyMap<string, IndexInfo>;
  /** DescribeTable's ItemCount: an estimate DynamoDB refreshes about every six hours. */
  readonly itemCount?: number;
}

type RawKeySchema = { AttributeName?: string; KeyType?: string }[] | undefined;

function keySchemaOf(raw: RawKeySchema): KeySchema {
  const hash = raw?.find((k) => k.KeyType === 'HASH')?.AttributeName ?? '';
  const range = raw?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
  return range === undefined ? { partitionKey: hash } : { partitionKey: hash, sortKey: range };
}

function describeKeys(keys: KeySchema): string {
  return keys.sortKey === undefined
    ? `partition key \`${keys.partitionKey}\` and no sort key`
    : `partition key \`${keys.partitionKey}\` and sort key \`${keys.sortKey}\``;
}

/** Describes each table once per adapter; a failed describe is not cached. */
export class TableCache {
  private readonly cache = new Map<string, Promise<TableInfo>>();
  /** Each described table's incarnation: its TableId, else its ARN and creation time. */
  private readonly instances = new Map<string, string>();

  /** The incarnation of a table described so far, or undefined. */
  instanceOf(table: string): string | undefined {
    return this.instances.get(table);
  }

  constructor(
    private readonly describe: (table: string) => Promise<DescribeTableCommandOutput>,
    private readonly where: string,
  ) {}

  get(table: string): Promise<TableInfo> {
    let info = this.cache.get(table);
    if (!info) {
      info = this.load(table);
      this.cache.set(table, info);
      info.catch(() => this.cache.delete(table));
    }
    return info;
  }

  private async load(table: string): Promise<TableInfo> {
    let out: DescribeTableCommandOutput;
    try {
      out = await this.describe(table);
    } catch (err) {
      // Cut off by the stop signal (Ctrl-C): passed through untouched, as sendRead does.
      if (isAbort(err)) throw err;
      if (isResourceNotFound(err)) {
        throw new DatafixError(
          'config',
          'DF401',
          `table \`${table}\` does not exist at ${this.where}; check the table name and the target's region/endpoint`,
        );
      }
      throw (
        environmentError(err, this.where, `describe table \`${table}\``) ??
        new DatafixError('connection', 'DF410', `could not describe table \`${table}\` at ${this.where}: ${messageOf(err)}`)
      );
    }
    const t = out.Table;
    const instance =
      t?.TableId ?? (t?.CreationDateTime ? `${t.TableArn ?? table}@${new Date(t.CreationDateTime).toISOString()}` : undefined);
    if (instance) this.instances.set(table, instance);
    const keys = keySchemaOf(t?.KeySchema);
    const indexes = new Map<string, IndexInfo>();
    for (const g of t?.GlobalSecondaryIndexes ?? []) {
      if (!g.IndexName) continue;
      indexes.set(g.IndexName, {
        name: g.IndexName,
        kind: 'global',
        ...keySchemaOf(g.KeySchema),
        ...(g.IndexStatus ? { status: g.IndexStatus } : {}),
        projection: g.Projection?.ProjectionType ?? 'ALL',
        included: g.Projection?.NonKeyAttributes ?? [],
        ...(g.ItemCount !== undefined ? { itemCount: g.ItemCount } : {}),
      });
    }
    for (const l of t?.LocalSecondaryIndexes ?? []) {
      if (!l.IndexName) continue;
      indexes.set(l.IndexName, {
        name: l.IndexName,
        kind: 'local',
        ...keySchemaOf(l.KeySchema),
        projection: l.Projection?.ProjectionType ?? 'ALL',
        included: l.Projection?.NonKeyAttributes ?? [],
        ...(l.ItemCount !== undefined ? { itemCount: l.ItemCount } : {}),
      });
    }
    return {
      name: table,
      ...keys,
      keyNames: keys.sortKey === undefined ? [keys.partitionKey] : [keys.partitionKey, keys.sortKey],
      keyTypes: Object.fromEntries((t?.AttributeDefinitions ?? []).map((d) => [d.AttributeName ?? '', d.AttributeType ?? 'S'])),
      ...(t?.TableStatus ? { status: t.TableStatus } : {}),
      indexes,
      ...(t?.ItemCount !== undefined ? { itemCount: t.ItemCount } : {}),
    };
  }
}

/** The index a source reads, or throws DF402 naming the indexes that do exist. */
export function findIndex(info: TableInfo, index: string, at: readonly string[] = ['source']): IndexInfo {
  const found = info.indexes.get(index);
  if (!found) {
    const known = [...info.indexes.keys()].map((n) => `\`${n}\``).join(', ') || 'none';
    throw targetMismatch(
      'DF402',
      `table \`${info.name}\` has no index \`${index}\` (its indexes: ${known}); fix the source's \`index\` or create the index`,
      at,
    );
  }
  return found;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n));
}

function keyList(names: readonly string[]): string {
  return names.map((n) => `\`${n}\``).join(', ') || 'nothing';
}

/** A lookup's query names the partition and sort key of the table or index it queries. */
function checkListLookup(lookup: ListLookupPlan, info: TableInfo): void {
  const at = ['lookups', lookup.name, 'query'];
  const keys: KeySchema = lookup.index === undefined ? info : findIndex(info, lookup.index, [...at, 'index']);
  const where = lookup.index === undefined ? `table \`${info.name}\`` : `index \`${lookup.index}\` of table \`${info.name}\``;
  const pk = lookup.match[0]?.[0] ?? '';
  if (pk !== keys.partitionKey) {
    throw targetMismatch(
      'DF404',
      `lookup \`${lookup.name}\` queries by \`${pk}\` as its partition key, but ${where} has ${describeKeys(keys)}; name \`${keys.partitionKey}\` first in lookups.${lookup.name}.query.key${lookup.index === undefined ? ' or set its `index`' : ''}`,
      [...at, 'key', pk],
    );
  }
  const sk = lookup.sortKey?.name;
  if (sk !== undefined && sk !== keys.sortKey) {
    throw targetMismatch(
      'DF404',
      `lookup \`${lookup.name}\` tests \`${sk}\` as its sort key, but ${where} has ${describeKeys(keys)}; ${keys.sortKey === undefined ? 'remove the sort-key condition' : `use \`${keys.sortKey}\``}`,
      [...at, 'key', sk],
    );
  }
}

/** Checks a plan against the live tables; throws the first mismatch as a DatafixError. */
export async function checkPlan(plan: FixPlan, targetTable: string, tables: TableCache): Promise<void> {
  const table = await tables.get(targetTable);
  if (table.status !== undefined && !['ACTIVE', 'UPDATING'].includes(table.status)) {
    throw new DatafixError(
      'config',
      'DF401',
      `table \`${table.name}\` is ${table.status}, not ACTIVE; wait until it is ACTIVE and run again`,
    );
  }

  const source = plan.source;
  if (source.kind === 'table') {
    throw new DatafixError('config', 'DF205', 'a DynamoDB target reads with source.query or source.scan, not source.table');
  }
  let keys: KeySchema = table;
  let where = `table \`${table.name}\``;
  const sourceAt = ['source', source.kind];
  if (source.index !== undefined) {
    const index = findIndex(table, source.index, [...sourceAt, 'index']);
    if (index.status !== undefined && index.status !== 'ACTIVE') {
      throw targetMismatch(
        'DF402',
        `index \`${index.name}\` of table \`${table.name}\` is ${index.status}, not ACTIVE; wait for it and run again`,
        [...sourceAt, 'index'],
      );
    }
    keys = index;
    where = `index \`${index.name}\` of table \`${table.name}\``;
    // The engine diffs against the source record when the update addresses that record; an index
    // that does not project the written fields would make present values look absent.
    const before = plan.update.before;
    if (before.kind === 'context' && before.root === source.as && index.projection !== 'ALL') {
      const written = [...plan.update.set.map((f) => f.field), ...plan.update.touch.map((f) => f.field)];
      const unprojected = written.filter((f) => !index.included.includes(f));
      if (unprojected.length > 0) {
        throw targetMismatch(
          'DF402',
          `index \`${index.name}\` of table \`${table.name}\` projects ${index.projection}, so ${keyList(unprojected)} would read as absent; use an index with projection ALL, or fetch the item with a lookup`,
          [...sourceAt, 'index'],
        );
      }
    }
  }

  if (source.kind === 'query') {
    const pk = source.partitionKey.name;
    if (pk !== keys.partitionKey) {
      throw targetMismatch(
        'DF404',
        `the query names \`${pk}\` as its partition key, but ${where} has ${describeKeys(keys)}; name \`${keys.partitionKey}\` first in source.query.key${source.index === undefined ? ' or set source.query.index' : ''}`,
        ['source', 'query', 'key', pk],
      );
    }
    const sk = source.sortKey?.name;
    if (sk !== undefined && sk !== keys.sortKey) {
      throw targetMismatch(
        'DF404',
        `the query tests \`${sk}\` as its sort key, but ${where} has ${describeKeys(keys)}; ${keys.sortKey === undefined ? 'remove the sort-key condition' : `use \`${keys.sortKey}\``} in source.query.key or move the test to source.query.filter`,
        ['source', 'query', 'key', sk],
      );
    }
    // DynamoDB rejects a query filter on the queried key attributes.
    const keyAttrs = [keys.partitionKey, keys.sortKey].filter((n) => n !== undefined);
    for (const ref of source.filter ? conditionRefs(source.filter) : []) {
      if (keyAttrs.includes(ref.root)) {
        throw targetMismatch(
          'DF404',
          `source.query.filter uses \`${ref.root}\`, a key attribute of ${where}; DynamoDB only filters other attributes, so put that test in source.query.key`,
          ['source', 'query', 'filter'],
        );
      }
    }
  }

  for (const lookup of plan.lookups) {
    const info = lookup.table === undefined ? table : await tables.get(lookup.table);
    if (lookup.kind === 'list') {
      checkListLookup(lookup, info);
      continue;
    }
    const names = lookup.key.map(([n]) => n);
    if (!sameNames(names, info.keyNames)) {
      throw targetMismatch(
        'DF406',
        `lookup \`${lookup.name}\` gets by ${keyList(names)}, but table \`${info.name}\` has ${describeKeys(info)}; give exactly the table's key attributes under lookups.${lookup.name}.get`,
        ['lookups', lookup.name, 'get'],
      );
    }
  }

  const update = plan.update;
  const info = update.table === undefined ? table : await tables.get(update.table);
  const names = update.key.map(([n]) => n);
  if (!sameNames(names, info.keyNames)) {
    throw targetMismatch(
      'DF403',
      `update.key names ${keyList(names)}, but table \`${info.name}\` has ${describeKeys(info)}; give exactly the table's key attributes so one update addresses one item`,
      ['update', 'key'],
    );
  }
  const written = [...update.set.map((s) => s.field), ...update.touch.map((t) => t.field)];
  const keyField = written.find((f) => info.keyNames.includes(f));
  if (keyField !== undefined) {
    throw targetMismatch(
      'DF403',
      `update writes \`${keyField}\`, a key attribute of table \`${info.name}\`; key attributes cannot be updated, remove it from update.set/touch`,
      ['update', update.set.some((f) => f.field === keyField) ? 'set' : 'touch', keyField],
    );
  }
}
