/**
 * Throwaway targets for fix tests: a temporary SQLite file or a fresh table set on an in-process
 * DynamoDB-compatible server, laid out as the test declares (src/fixtest/tables.ts) or as
 * inferred from the fix, and seeded with the case's records.
 */
import { join } from 'node:path';
import { fromSqlValue, toSqlValue } from '../adapters/sqlite/index.js';
import { quoteIdent, SQL_IDENT } from '../adapters/sqlite/sql.js';
import type { LocalDynamo } from '../demo/local-dynamo.js';
import { DatafixError, type Diagnostic } from '../errors.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import { formatValue } from '../plan/values.js';
import { makeTempDir, removeTempDir } from '../safety/temp-dirs.js';
import {
  type Declarations,
  DYNAMO_TARGET_TABLE,
  type DynamoAttr,
  type DynamoLayout,
  dynamoTables,
  type Item,
  isNumberValue,
  type KeyType,
  recordKeyId,
  sqliteTables,
  type Tables,
  tablesOfFix,
  testFileProblem,
} from './tables.js';

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

/** A problem with a test case's tables or records, pointing at the test file value at fault. */
function caseError(code: string, at: string, message: string): DatafixError {
  return fromProblems([testFileProblem(code, at, message)]);
}

function fromProblems(problems: readonly Diagnostic[]): DatafixError {
  const first = problems[0] as Diagnostic;
  return new DatafixError('spec', first.code, first.message, problems);
}

/**
 * Checks what both backends check before creating anything: a given table the fix never reads
 * or writes (a typo such as `orderz`, which would make a case pass on no data at all: DF510).
 * The declarations were checked once for the whole file (loadTestFile, src/fixtest/schema.ts).
 */
function checkCase(plan: FixPlan, given: Tables, givenAt: string): void {
  const used = tablesOfFix(plan);
  for (const name of Object.keys(given)) {
    if (!used.has(name)) {
      const hint = plan.target.backend === 'dynamodb' ? `; use \`${DYNAMO_TARGET_TABLE}\` for the fix's own table` : '';
      throw caseError(
        'DF510',
        `${givenAt}/${name}`,
        `given.${name}: the fix reads or writes no such table (it uses ${[...used.keys()].join(', ')})${hint}`,
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
  checkCase(plan, given, givenAt);
  for (const [name, rows] of Object.entries(given)) {
    for (const [i, row] of rows.entries()) {
      const bad = Object.keys(row).find((c) => !SQL_IDENT.test(c));
      if (bad !== undefined) {
        throw caseError(
          'DF515',
          `${givenAt}/${name}/${i}/${bad}`,
          `given.${name}[${i}]: \`${bad}\` is not a column name SQLite can be given here (letters, digits, _)`,
        );
      }
    }
  }
  const ddl = sqliteTables(plan, given, declared);

  const dir = makeTempDir('datafix-test-');
  const path = join(dir, 'fixture.db');
  const db = new Database(path);
  let created = false;
  try {
    for (const [name, t] of ddl) {
      try {
        for (const statement of t.sql) db.exec(statement);
      } catch (err) {
        // Checked declarations should not get here; if SQLite still refuses one, it is that
        // declaration's problem, said at its line.
        throw caseError('DF514', declared.get(name)?.at ?? givenAt, `tables.${name}: SQLite refused the table: ${(err as Error).message}`);
      }
    }
    for (const [name, rows] of Object.entries(given)) {
      const t = ddl.get(name);
      db.transaction(() => {
        for (const [i, row] of rows.entries()) {
          const names = Object.keys(row);
          const unknown = names.find((n) => !t?.columns.has(n));
          if (unknown !== undefined) {
            throw caseError(
              'DF515',
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
              'DF515',
              `${givenAt}/${name}/${i}`,
              `given.${name}[${i}]: SQLite refused the record: ${(err as Error).message}`,
            );
          }
        }
      })();
    }
    created = true;
  } finally {
    db.close();
    // A case that could not be set up leaves no temporary directory behind.
    if (!created) removeTempDir(dir);
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
          // Integers beyond 2^53 stay exact, so an expectation off by one in the last digit fails.
          stmt.safeIntegers(true);
          out[name] = (stmt.all() as Item[]).map((row) => {
            for (const [k, v] of Object.entries(row)) row[k] = fromSqlValue(v);
            return row;
          });
        }
        return out;
      } finally {
        read.close();
      }
    },
    display: (text) => text,
    async dispose() {
      removeTempDir(dir);
    },
  };
}

let dynamoCounter = 0;

/**
 * Checks given items against their table's keys before any is written, so a bad record is named
 * by its position: each needs its table key, of the declared type; an index key, when present,
 * must have the index's type (an item without it is simply not in the index); and no two items
 * may share a key (DynamoDB would keep only the last).
 */
function checkDynamoItems(table: string, layout: DynamoLayout, items: readonly Item[], at: string): void {
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
          'DF515',
          `${at}/${i}${v === undefined ? '' : `/${a.name}`}`,
          `given.${table}[${i}]: key attribute \`${a.name}\` must be ${a.type === 'S' ? 'a string' : a.type === 'N' ? 'a number' : 'binary'} (type ${a.type}), but it is ${v === undefined ? 'absent' : formatValue(v, 80)}`,
        );
      }
    }
    const id = recordKeyId(
      item,
      layout.key.map((k) => k.name),
    );
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw caseError(
        'DF515',
        `${at}/${i}`,
        `given.${table}[${i}]: the same key as given.${table}[${earlier}]; DynamoDB would keep only one`,
      );
    }
    seen.set(id, i);
  }
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

  checkCase(plan, given, givenAt);
  const layout = dynamoTables(plan, given, declared, givenAt);
  if (!(layout instanceof Map)) throw fromProblems([layout]);

  const client = localClient(DynamoDBClient, server.endpoint);
  try {
    for (const [name, t] of layout) {
      const items = given[name] ?? [];
      const attrs = new Map([...t.key, ...t.indexes.flatMap((i) => i.key)].map((a) => [a.name, a.type]));
      const keySchema = (names: readonly DynamoAttr[]) =>
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
          'DF514',
          declared.get(name)?.at ?? givenAt,
          `tables.${name}: DynamoDB refused the table: ${(err as Error).message}`,
        );
      }
      checkDynamoItems(name, t, items, `${givenAt}/${name}`);
      try {
        if (items.length) await putItems(server.endpoint, realName(name), items);
      } catch (err) {
        throw caseError('DF515', `${givenAt}/${name}`, `given.${name}: DynamoDB refused the records: ${(err as Error).message}`);
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
