/**
 * Throwaway targets for fix tests: a temporary SQLite file or a fresh table set on an in-process
 * DynamoDB-compatible server. Table layouts are inferred from the plan (keys, index, columns it
 * reads and writes) and from the records a case gives, so a test file holds data, not DDL.
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

export type Item = Record<string, unknown>;

/** Records by table; the DynamoDB target table is called `target`. */
export type Tables = Record<string, Item[]>;

export interface EmbeddedTarget {
  /** The plan, pointed at the embedded target (and its renamed tables). */
  readonly plan: FixPlan;
  /** Key attributes/columns of each table, to match expected records. */
  readonly keys: ReadonlyMap<string, readonly string[]>;
  /** Every record of every table, by table name as the test file spells it. */
  snapshot(): Promise<Tables>;
  dispose(): Promise<void>;
}

export const DYNAMO_TARGET_TABLE = 'target';

export function createSqliteTarget(plan: FixPlan, given: Tables, Database: typeof import('better-sqlite3')): EmbeddedTarget {
  const dir = mkdtempSync(join(tmpdir(), 'datafix-test-'));
  const path = join(dir, 'fixture.db');
  const db = new Database(path);
  const layout = new Map<string, { columns: Set<string>; key: string[] }>();
  const table = (name: string) => {
    if (!SQL_IDENT.test(name)) throw new DatafixError('spec', 'DF503', `table name \`${name}\` is not a plain identifier`);
    let t = layout.get(name);
    if (!t) {
      t = { columns: new Set(), key: [] };
      layout.set(name, t);
    }
    return t;
  };
  if (plan.source.kind === 'table') {
    const src = table(plan.source.table);
    for (const r of plan.source.where ? conditionRefs(plan.source.where) : []) src.columns.add(r.root);
  }
  for (const l of plan.lookups) {
    const t = table(l.table ?? '');
    t.key = l.key.map(([k]) => k);
  }
  const updateTable = table(plan.update.table ?? '');
  updateTable.key = plan.update.key.map(([k]) => k);
  for (const f of [...plan.update.set.map((s) => s.field), ...plan.update.touch.map((t) => t.field)]) updateTable.columns.add(f);
  // A given table the fix never reads or writes (a typo such as `orderz`) would make a case pass
  // on no data at all: it fails the case, as on DynamoDB.
  for (const name of Object.keys(given)) {
    if (!layout.has(name)) {
      throw new DatafixError(
        'spec',
        'DF505',
        `given.${name}: the fix reads or writes no such table (it uses ${[...layout.keys()].join(', ')})`,
      );
    }
  }
  for (const [name, rows] of Object.entries(given)) {
    const t = table(name);
    for (const row of rows) for (const c of Object.keys(row)) t.columns.add(c);
  }
  for (const [name, t] of layout) {
    for (const k of t.key) t.columns.add(k);
    for (const c of t.columns) {
      if (!SQL_IDENT.test(c)) throw new DatafixError('spec', 'DF503', `column \`${c}\` of \`${name}\` is not a plain identifier`);
    }
    // No declared types: SQLite then keeps each given value's own type, as the test wrote it.
    const cols = [...t.columns].map(quoteIdent).join(', ');
    const pk = t.key.length ? `, PRIMARY KEY (${t.key.map(quoteIdent).join(', ')})` : '';
    db.exec(`CREATE TABLE ${quoteIdent(name)} (${cols}${pk})`);
    const rows = given[name] ?? [];
    db.transaction(() => {
      for (const row of rows) {
        const names = Object.keys(row);
        db.prepare(`INSERT INTO ${quoteIdent(name)} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`).run(
          ...names.map((n) => toSqlValue(row[n])),
        );
      }
    })();
  }
  db.close();
  const target: TargetPlan = { backend: 'sqlite', path, busyTimeoutMs: 5000 };
  return {
    plan: { ...plan, target },
    keys: new Map([...layout].map(([name, t]) => [name, t.key.length ? t.key : ['rowid']])),
    async snapshot() {
      const read = new Database(path, { readonly: true });
      try {
        const out: Tables = {};
        for (const name of layout.keys()) {
          const stmt = read.prepare(`SELECT ${layout.get(name)?.key.length ? '' : 'rowid, '}* FROM ${quoteIdent(name)} ORDER BY rowid`);
          stmt.safeIntegers(false);
          out[name] = stmt.all() as Item[];
        }
        return out;
      } finally {
        read.close();
      }
    },
    async dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let dynamoCounter = 0;

export async function createDynamoTarget(plan: FixPlan, given: Tables, server: LocalDynamo): Promise<EmbeddedTarget> {
  const { CreateTableCommand, DynamoDBClient, ScanCommand } = await import('@aws-sdk/client-dynamodb');
  const { unmarshall } = await import('@aws-sdk/util-dynamodb');
  const { LOCAL_CREDENTIALS, LOCAL_REGION, putItems } = await import('../demo/local-dynamo.js');
  const prefix = `t${++dynamoCounter}-`;
  const realName = (name: string) => `${prefix}${name}`;

  interface Layout {
    key: string[];
    index?: { name: string; key: string[] };
  }
  const layout = new Map<string, Layout>();
  const target: Layout = { key: plan.update.key.map(([k]) => k) };
  if (plan.source.kind === 'query' && plan.source.index) {
    target.index = {
      name: plan.source.index,
      key: [plan.source.partitionKey.name, ...(plan.source.sortKey ? [plan.source.sortKey.name] : [])],
    };
  } else if (plan.source.kind !== 'table' && plan.source.index) {
    throw new DatafixError(
      'spec',
      'DF504',
      `fix tests cannot tell the keys of index \`${plan.source.index}\` from a scan; query it instead`,
    );
  }
  layout.set(DYNAMO_TARGET_TABLE, target);
  for (const l of plan.lookups) if (l.table) layout.set(l.table, { key: l.key.map(([k]) => k) });
  for (const name of Object.keys(given)) {
    if (!layout.has(name)) {
      throw new DatafixError(
        'spec',
        'DF505',
        `given.${name}: the fix reads no such table; use \`${DYNAMO_TARGET_TABLE}\` for the fix's own table`,
      );
    }
  }

  const client = new DynamoDBClient({ endpoint: server.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    for (const [name, t] of layout) {
      const items = given[name] ?? [];
      const typeOf = (attr: string) => (items.some((i) => typeof i[attr] === 'number') ? 'N' : 'S');
      const attrs = [...new Set([...t.key, ...(t.index?.key ?? [])])];
      const keySchema = (names: string[]) =>
        names.map((AttributeName, i) => ({ AttributeName, KeyType: i === 0 ? ('HASH' as const) : ('RANGE' as const) }));
      const throughput = { ReadCapacityUnits: 100, WriteCapacityUnits: 100 };
      await client.send(
        new CreateTableCommand({
          TableName: realName(name),
          AttributeDefinitions: attrs.map((AttributeName) => ({ AttributeName, AttributeType: typeOf(AttributeName) })),
          KeySchema: keySchema(t.key),
          ProvisionedThroughput: throughput,
          ...(t.index
            ? {
                GlobalSecondaryIndexes: [
                  {
                    IndexName: t.index.name,
                    KeySchema: keySchema(t.index.key),
                    Projection: { ProjectionType: 'ALL' },
                    ProvisionedThroughput: throughput,
                  },
                ],
              }
            : {}),
        }),
      );
      if (items.length) await putItems(server.endpoint, realName(name), items);
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
    keys: new Map([...layout].map(([name, t]) => [name, t.key])),
    async snapshot() {
      const reader = new DynamoDBClient({ endpoint: server.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
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
    async dispose() {},
  };
}
