/**
 * Throwaway targets for fix tests: a temporary SQLite file or a fresh table set on an in-process
 * DynamoDB-compatible server. A test may declare each table's layout (columns with types and
 * collations, keys, indexes) so the case runs on the tables production has; without declarations
 * the layout is inferred from the plan and the records given, and an index is never made up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toSqlValue } from '../adapters/sqlite/index.js';
import { quoteIdent, SQL_IDENT } from '../adapters/sqlite/sql.js';
import type { LocalDynamo } from '../demo/local-dynamo.js';
import { DatafixError } from '../errors.js';
import { conditionRefs } from '../plan/conditions.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import { formatValue } from '../plan/values.js';

export type Item = Record<string, unknown>;

/** Records by table; the DynamoDB target table is called `target`. */
export type Tables = Record<string, Item[]>;

/** A SQLite column: its declared type (which sets its type affinity) and its collation. */
export type ColumnDecl = string | null | { readonly type?: string | null; readonly collate?: 'BINARY' | 'NOCASE' | 'RTRIM' };

/** A DynamoDB key attribute: a name (type S) or a name with its type, S, N or B. */
export type KeyAttrDecl = string | { readonly name: string; readonly type?: 'S' | 'N' | 'B' };

/**
 * One table's layout as a test declares it. SQLite uses `columns`, `primaryKey`, `unique`,
 * `indexes` (name → columns) and `strict`; DynamoDB uses `partitionKey`, `sortKey` and `indexes`
 * (name → `{ partitionKey, sortKey }`, global secondary indexes).
 */
export interface TableDecl {
  readonly columns?: Record<string, ColumnDecl>;
  readonly primaryKey?: readonly string[];
  readonly unique?: readonly (readonly string[])[];
  readonly strict?: boolean;
  readonly partitionKey?: KeyAttrDecl;
  readonly sortKey?: KeyAttrDecl;
  readonly indexes?: Record<string, readonly string[] | { readonly partitionKey: KeyAttrDecl; readonly sortKey?: KeyAttrDecl }>;
}

/** Declared layouts by table name, each with the JSON pointer of its declaration in the test file. */
export type Declarations = ReadonlyMap<string, { readonly decl: TableDecl; readonly at: string }>;

export interface EmbeddedTarget {
  /** The plan, pointed at the embedded target (and its renamed tables). */
  readonly plan: FixPlan;
  /** Key attributes/columns of each table, to match expected records. */
  readonly keys: ReadonlyMap<string, readonly string[]>;
  /** Every record of every table, by table name as the test file spells it. */
  snapshot(): Promise<Tables>;
  /** `text` (an error message) with each table named as the test file names it. */
  display(text: string): string;
  dispose(): Promise<void>;
}

/** A problem with a test case's tables, pointing at the test file value at fault (`at`, a JSON pointer). */
function caseError(code: string, at: string, message: string): DatafixError {
  return new DatafixError('spec', code, message, [{ code, severity: 'error', message, path: at }]);
}

const DECLARED_TYPE = /^[A-Za-z][A-Za-z0-9_ ]*(\(\s*[+-]?[0-9]+\s*(,\s*[+-]?[0-9]+\s*)?\))?$/;

/** Every table name the fix reads or writes, with the key it addresses records by. */
function tablesOfFix(plan: FixPlan, dynamoTarget?: string): Map<string, string[]> {
  const used = new Map<string, string[]>();
  if (dynamoTarget === undefined && plan.source.kind === 'table') used.set(plan.source.table, []);
  for (const l of plan.lookups)
    used.set(
      l.table ?? dynamoTarget ?? '',
      l.key.map(([k]) => k),
    );
  used.set(
    dynamoTarget ?? plan.update.table ?? '',
    plan.update.key.map(([k]) => k),
  );
  return used;
}

/**
 * Requires that the test declares a layout for every table the fix uses, once it declares any
 * (a half-inferred layout could hide the very difference the declarations are for).
 */
function requireDeclared(used: Iterable<string>, declared: Declarations, givenAt: string): void {
  if (declared.size === 0) return;
  for (const name of used) {
    if (!declared.has(name)) {
      throw caseError(
        'DF506',
        givenAt,
        `tables: the fix uses table \`${name}\`, which this test declares no layout for; declare it under \`tables\` (or declare no table, and datafix infers them all)`,
      );
    }
  }
}

export function createSqliteTarget(
  plan: FixPlan,
  given: Tables,
  Database: typeof import('better-sqlite3'),
  declared: Declarations = new Map(),
  givenAt = '/given',
): EmbeddedTarget {
  const used = tablesOfFix(plan);
  // A given table the fix never reads or writes (a typo such as `orderz`) would make a case pass
  // on no data at all: it fails the case, as on DynamoDB.
  for (const name of Object.keys(given)) {
    if (!used.has(name)) {
      throw caseError(
        'DF505',
        `${givenAt}/${name}`,
        `given.${name}: the fix reads or writes no such table (it uses ${[...used.keys()].join(', ')})`,
      );
    }
  }
  requireDeclared(used.keys(), declared, givenAt);
  const ddl = declared.size ? declaredSqliteTables(declared) : inferredSqliteTables(plan, given, used);

  const dir = mkdtempSync(join(tmpdir(), 'datafix-test-'));
  const path = join(dir, 'fixture.db');
  const db = new Database(path);
  try {
    for (const t of ddl.values()) for (const statement of t.sql) db.exec(statement);
    for (const [name, rows] of Object.entries(given)) {
      const t = ddl.get(name);
      db.transaction(() => {
        for (const [i, row] of rows.entries()) {
          const names = Object.keys(row);
          const unknown = names.find((n) => !t?.columns.has(n));
          if (unknown !== undefined) {
            throw caseError(
              'DF507',
              `${givenAt}/${name}/${i}/${unknown}`,
              `given.${name}[${i}]: the declared table has no column \`${unknown}\` (it has ${[...(t?.columns ?? [])].join(', ')})`,
            );
          }
          try {
            db.prepare(
              `INSERT INTO ${quoteIdent(name)} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
            ).run(...names.map((n) => toSqlValue(row[n])));
          } catch (err) {
            // A duplicate key, a NOT NULL or a STRICT type: the records break the declared table.
            throw caseError(
              'DF507',
              `${givenAt}/${name}/${i}`,
              `given.${name}[${i}]: SQLite refused the record: ${(err as Error).message}`,
            );
          }
        }
      })();
    }
  } finally {
    db.close();
  }
  const target: TargetPlan = { backend: 'sqlite', path, busyTimeoutMs: 5000 };
  return {
    plan: { ...plan, target },
    keys: new Map([...ddl].map(([name, t]) => [name, t.key.length ? t.key : ['rowid']])),
    async snapshot() {
      const read = new Database(path, { readonly: true });
      try {
        const out: Tables = {};
        for (const [name, t] of ddl) {
          const stmt = read.prepare(`SELECT ${t.key.length ? '' : 'rowid, '}* FROM ${quoteIdent(name)} ORDER BY rowid`);
          stmt.safeIntegers(false);
          out[name] = stmt.all() as Item[];
        }
        return out;
      } finally {
        read.close();
      }
    },
    display: (text) => text,
    async dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface SqliteTable {
  readonly columns: ReadonlySet<string>;
  /** The primary key, or none (rows are then addressed by rowid). */
  readonly key: readonly string[];
  /** CREATE statements, assembled from checked identifiers and checked type names only. */
  readonly sql: readonly string[];
}

/** Untyped columns: each given value keeps the type the test wrote; keys are those the fix uses. */
function inferredSqliteTables(plan: FixPlan, given: Tables, used: ReadonlyMap<string, string[]>): Map<string, SqliteTable> {
  const columns = new Map<string, Set<string>>([...used.keys()].map((n) => [n, new Set<string>()]));
  if (plan.source.kind === 'table') {
    for (const r of plan.source.where ? conditionRefs(plan.source.where) : []) columns.get(plan.source.table)?.add(r.root);
  }
  const updateColumns = columns.get(plan.update.table ?? '');
  for (const f of [...plan.update.set.map((s) => s.field), ...plan.update.touch.map((t) => t.field)]) updateColumns?.add(f);
  for (const [name, rows] of Object.entries(given)) for (const row of rows) for (const c of Object.keys(row)) columns.get(name)?.add(c);
  const out = new Map<string, SqliteTable>();
  for (const [name, key] of used) {
    if (!SQL_IDENT.test(name)) throw new DatafixError('spec', 'DF503', `table name \`${name}\` is not a plain identifier`);
    const cols = columns.get(name) ?? new Set<string>();
    for (const k of key) cols.add(k);
    for (const c of cols) {
      if (!SQL_IDENT.test(c)) throw new DatafixError('spec', 'DF503', `column \`${c}\` of \`${name}\` is not a plain identifier`);
    }
    const pk = key.length ? `, PRIMARY KEY (${key.map(quoteIdent).join(', ')})` : '';
    out.set(name, { columns: cols, key, sql: [`CREATE TABLE ${quoteIdent(name)} (${[...cols].map(quoteIdent).join(', ')}${pk})`] });
  }
  return out;
}

/** The declared tables, exactly: types, collations, keys and indexes as the test gives them. */
function declaredSqliteTables(declared: Declarations): Map<string, SqliteTable> {
  const out = new Map<string, SqliteTable>();
  for (const [name, { decl, at }] of declared) {
    const ident = (n: string, where: string) => {
      if (!SQL_IDENT.test(n)) throw caseError('DF503', where, `${where.slice(1).replaceAll('/', '.')}: \`${n}\` is not a plain identifier`);
      return quoteIdent(n);
    };
    ident(name, at);
    for (const dynamoOnly of ['partitionKey', 'sortKey'] as const) {
      if (decl[dynamoOnly] !== undefined) {
        throw caseError(
          'DF506',
          `${at}/${dynamoOnly}`,
          `tables.${name}.${dynamoOnly}: a DynamoDB key; a SQLite table declares \`columns\` and \`primaryKey\``,
        );
      }
    }
    const columns = Object.entries(decl.columns ?? {});
    if (columns.length === 0) throw caseError('DF506', at, `tables.${name}: declare its \`columns\` (name: declared type)`);
    const defs = columns.map(([col, c]) => {
      const type = typeof c === 'string' || c === null ? c : (c.type ?? null);
      const collate = typeof c === 'object' && c !== null ? c.collate : undefined;
      if (collate !== undefined && !['BINARY', 'NOCASE', 'RTRIM'].includes(collate)) {
        throw caseError(
          'DF506',
          `${at}/columns/${col}/collate`,
          `tables.${name}.columns.${col}.collate: SQLite's collations are BINARY, NOCASE and RTRIM`,
        );
      }
      if (type !== null && type !== '' && !DECLARED_TYPE.test(type)) {
        throw caseError(
          'DF506',
          `${at}/columns/${col}`,
          `tables.${name}.columns.${col}: \`${type}\` is not a type name (e.g. TEXT, INTEGER, VARCHAR(255))`,
        );
      }
      return `${ident(col, `${at}/columns/${col}`)}${type ? ` ${type}` : ''}${collate ? ` COLLATE ${collate}` : ''}`;
    });
    const names = new Set(columns.map(([c]) => c));
    const known = (cols: readonly string[], where: string) => {
      for (const c of cols) {
        if (!names.has(c))
          throw caseError('DF506', where, `${where.slice(1).replaceAll('/', '.')}: \`${c}\` is not a declared column of \`${name}\``);
      }
      return cols.map(quoteIdent).join(', ');
    };
    const key = decl.primaryKey ?? [];
    if (key.length) defs.push(`PRIMARY KEY (${known(key, `${at}/primaryKey`)})`);
    for (const [i, u] of (decl.unique ?? []).entries()) defs.push(`UNIQUE (${known(u, `${at}/unique/${i}`)})`);
    const sql = [`CREATE TABLE ${quoteIdent(name)} (${defs.join(', ')})${decl.strict ? ' STRICT' : ''}`];
    for (const [index, cols] of Object.entries(decl.indexes ?? {})) {
      if (!Array.isArray(cols)) {
        throw caseError('DF506', `${at}/indexes/${index}`, `tables.${name}.indexes.${index}: a SQLite index is a list of columns`);
      }
      sql.push(`CREATE INDEX ${ident(index, `${at}/indexes/${index}`)} ON ${quoteIdent(name)} (${known(cols, `${at}/indexes/${index}`)})`);
    }
    out.set(name, { columns: names, key, sql });
  }
  return out;
}

export const DYNAMO_TARGET_TABLE = 'target';

let dynamoCounter = 0;

type KeyType = 'S' | 'N' | 'B';

/**
 * Checks given items against their table's keys before any is written, so a bad record is named
 * by its position: each needs its table key, of the declared type; an index key, when present,
 * must have the index's type (an item without it is simply not in the index); and no two items
 * may share a key (DynamoDB would keep only the last).
 */
function checkDynamoItems(
  table: string,
  layout: { key: { name: string; type: KeyType }[]; indexes: { name: string; key: { name: string; type: KeyType }[] }[] },
  items: readonly Item[],
  at: string,
): void {
  const typeOf = (v: unknown): KeyType | undefined =>
    typeof v === 'string' ? 'S' : isNumberValue(v) ? 'N' : v instanceof Uint8Array ? 'B' : undefined;
  const seen = new Map<string, number>();
  for (const [i, item] of items.entries()) {
    for (const [a, required] of [
      ...layout.key.map((k) => [k, true] as const),
      ...layout.indexes.flatMap((x) => x.key.map((k) => [k, false] as const)),
    ]) {
      const v = item[a.name];
      if (v === undefined && !required) continue;
      if (typeOf(v) !== a.type) {
        throw caseError(
          'DF507',
          `${at}/${i}${v === undefined ? '' : `/${a.name}`}`,
          `given.${table}[${i}]: key attribute \`${a.name}\` must be ${a.type === 'S' ? 'a string' : a.type === 'N' ? 'a number' : 'binary'} (type ${a.type}), but it is ${v === undefined ? 'absent' : formatValue(v, 80)}`,
        );
      }
    }
    const id = JSON.stringify(layout.key.map((k) => formatValue(item[k.name], Number.POSITIVE_INFINITY)));
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw caseError(
        'DF507',
        `${at}/${i}`,
        `given.${table}[${i}]: the same key as given.${table}[${earlier}]; DynamoDB would keep only one`,
      );
    }
    seen.set(id, i);
  }
}

/** A number as a given record holds it: a plain number, or an exact one (`{ $number: "…" }`). */
function isNumberValue(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'object' && v !== null && 'toBigInt' in v);
}

export async function createDynamoTarget(
  plan: FixPlan,
  given: Tables,
  server: LocalDynamo,
  declared: Declarations = new Map(),
  givenAt = '/given',
): Promise<EmbeddedTarget> {
  const { CreateTableCommand, DynamoDBClient, ScanCommand } = await import('@aws-sdk/client-dynamodb');
  const { unmarshall } = await import('@aws-sdk/util-dynamodb');
  const { LOCAL_REGION, localClient, putItems } = await import('../demo/local-dynamo.js');
  const prefix = `t${++dynamoCounter}-`;
  const realName = (name: string) => `${prefix}${name}`;

  type Attr = { name: string; type: 'S' | 'N' | 'B' };
  interface Layout {
    key: Attr[];
    indexes: { name: string; key: Attr[] }[];
  }
  const used = tablesOfFix(plan, DYNAMO_TARGET_TABLE);
  for (const name of Object.keys(given)) {
    if (!used.has(name)) {
      throw caseError(
        'DF505',
        `${givenAt}/${name}`,
        `given.${name}: the fix reads no such table; use \`${DYNAMO_TARGET_TABLE}\` for the fix's own table`,
      );
    }
  }
  requireDeclared(used.keys(), declared, givenAt);
  const layout = new Map<string, Layout>();
  if (declared.size) {
    const attr = (a: KeyAttrDecl): Attr => (typeof a === 'string' ? { name: a, type: 'S' } : { name: a.name, type: a.type ?? 'S' });
    for (const [name, { decl, at }] of declared) {
      for (const sqlOnly of ['columns', 'primaryKey', 'unique', 'strict'] as const) {
        if (decl[sqlOnly] !== undefined) {
          throw caseError(
            'DF506',
            `${at}/${sqlOnly}`,
            `tables.${name}.${sqlOnly}: a SQLite layout; a DynamoDB table declares \`partitionKey\`, \`sortKey\` and \`indexes\``,
          );
        }
      }
      if (decl.partitionKey === undefined) throw caseError('DF506', at, `tables.${name}: declare its \`partitionKey\``);
      const indexes = Object.entries(decl.indexes ?? {}).map(([index, k]) => {
        if (Array.isArray(k) || !('partitionKey' in k)) {
          throw caseError(
            'DF506',
            `${at}/indexes/${index}`,
            `tables.${name}.indexes.${index}: a DynamoDB index declares \`partitionKey\` (and \`sortKey\`)`,
          );
        }
        return { name: index, key: [attr(k.partitionKey), ...(k.sortKey ? [attr(k.sortKey)] : [])] };
      });
      layout.set(name, { key: [attr(decl.partitionKey), ...(decl.sortKey ? [attr(decl.sortKey)] : [])], indexes });
    }
  } else {
    // Inferred: the keys the fix addresses records by, typed N where a given record holds a
    // number. No index is made up: a fix querying an index production lacks must not pass.
    if (plan.source.kind !== 'table' && plan.source.index) {
      throw caseError(
        'DF504',
        givenAt,
        `the fix reads index \`${plan.source.index}\`: declare the tables' keys and indexes under \`tables\` (datafix test never creates an index the test does not declare)`,
      );
    }
    for (const [name, key] of used) {
      const items = given[name] ?? [];
      const typeOf = (a: string) => (items.some((i) => isNumberValue(i[a])) ? ('N' as const) : ('S' as const));
      layout.set(name, { key: key.map((k) => ({ name: k, type: typeOf(k) })), indexes: [] });
    }
  }

  const client = localClient(DynamoDBClient, server.endpoint);
  try {
    for (const [name, t] of layout) {
      const items = given[name] ?? [];
      const attrs = new Map([...t.key, ...t.indexes.flatMap((i) => i.key)].map((a) => [a.name, a.type]));
      const keySchema = (names: Attr[]) =>
        names.map((a, i) => ({ AttributeName: a.name, KeyType: i === 0 ? ('HASH' as const) : ('RANGE' as const) }));
      const throughput = { ReadCapacityUnits: 100, WriteCapacityUnits: 100 };
      try {
        await client.send(
          new CreateTableCommand({
            TableName: realName(name),
            AttributeDefinitions: [...attrs].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
            KeySchema: keySchema(t.key),
            ProvisionedThroughput: throughput,
            ...(t.indexes.length
              ? {
                  GlobalSecondaryIndexes: t.indexes.map((i) => ({
                    IndexName: i.name,
                    KeySchema: keySchema(i.key),
                    Projection: { ProjectionType: 'ALL' as const },
                    ProvisionedThroughput: throughput,
                  })),
                }
              : {}),
          }),
        );
      } catch (err) {
        // Two declarations of one attribute with different types, an index name DynamoDB refuses.
        throw caseError(
          'DF506',
          declared.get(name)?.at ?? givenAt,
          `tables.${name}: DynamoDB refused the table: ${(err as Error).message}`,
        );
      }
      checkDynamoItems(name, t, items, `${givenAt}/${name}`);
      try {
        if (items.length) await putItems(server.endpoint, realName(name), items);
      } catch (err) {
        throw caseError('DF507', `${givenAt}/${name}`, `given.${name}: DynamoDB refused the records: ${(err as Error).message}`);
      }
    }
  } finally {
    client.destroy();
  }

  const dynamoTarget: TargetPlan = {
    backend: 'dynamodb',
    table: realName(DYNAMO_TARGET_TABLE),
    region: LOCAL_REGION,
    endpoint: server.endpoint,
  };
  return {
    plan: {
      ...plan,
      target: dynamoTarget,
      lookups: plan.lookups.map((l) => (l.table ? { ...l, table: realName(l.table) } : l)),
    },
    keys: new Map([...layout].map(([name, t]) => [name, t.key.map((a) => a.name)])),
    async snapshot() {
      const reader = localClient(DynamoDBClient, server.endpoint);
      try {
        const out: Tables = {};
        for (const name of layout.keys()) {
          const items: Item[] = [];
          let start: Record<string, never> | undefined;
          do {
            const page = await reader.send(new ScanCommand({ TableName: realName(name), ExclusiveStartKey: start, ConsistentRead: true }));
            items.push(...(page.Items ?? []).map((i) => unmarshall(i, { wrapNumbers: true })));
            start = page.LastEvaluatedKey as typeof start;
          } while (start);
          out[name] = items;
        }
        return out;
      } finally {
        reader.destroy();
      }
    },
    display: (text) => [...layout.keys()].reduce((out, name) => out.replaceAll(realName(name), name), text),
    async dispose() {},
  };
}
