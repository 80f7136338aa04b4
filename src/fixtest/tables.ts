/**
 * Table layouts in fix tests: what a test file may declare under `tables`, the checks that make
 * a declaration mean what production has (run before any case, so a bad declaration is one error
 * at its line, exit 2), and the layouts a case's embedded database is built from. Without
 * declarations the layout is inferred from the fix and the records given.
 */
import { quoteIdent, SQL_IDENT } from '../adapters/sqlite/sql.js';
import type { Diagnostic } from '../errors.js';
import { conditionRefs } from '../plan/conditions.js';
import { columnReadBy, planRefs } from '../plan/refs.js';
import type { FixPlan } from '../plan/types.js';
import { exactNumberText, formatValue } from '../plan/values.js';

export type Item = Record<string, unknown>;

/** Records by table; the DynamoDB target table is called `target`. */
export type Tables = Record<string, Item[]>;

/** The name fix tests give a DynamoDB fix's own table. */
export const DYNAMO_TARGET_TABLE = 'target';

/** A SQLite column: its declared type (which sets its type affinity) and its collation. */
export type ColumnDecl = string | null | { readonly type?: string | null; readonly collate?: string };

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

/** A SQLite type name as CREATE TABLE takes it: words, optionally with one or two numbers. */
const DECLARED_TYPE = /^[A-Za-z_][A-Za-z0-9_]*( [A-Za-z_][A-Za-z0-9_]*)*(\(\s*[+-]?[0-9]+\s*(,\s*[+-]?[0-9]+\s*)?\))?$/;
/** Words that start a column constraint: in a type name they would declare a constraint instead. */
const CONSTRAINT_WORDS = new Set(
  'PRIMARY KEY NOT NULL DEFAULT COLLATE GENERATED ALWAYS AS UNIQUE CHECK REFERENCES CONSTRAINT AUTOINCREMENT ON CONFLICT STORED VIRTUAL ASC DESC'.split(
    ' ',
  ),
);
/** The only types a STRICT table takes. https://www.sqlite.org/stricttables.html */
const STRICT_TYPES = ['INT', 'INTEGER', 'REAL', 'TEXT', 'BLOB', 'ANY'];
const COLLATIONS = ['BINARY', 'NOCASE', 'RTRIM'];

/** A diagnostic about a value of the test file (`at`, a JSON pointer), located by the runner. */
export function testFileProblem(code: string, at: string, message: string): Diagnostic {
  return { code, severity: 'error', message, path: at };
}

/** Every table the fix reads or writes, with the key it addresses records by. */
export function tablesOfFix(plan: FixPlan): Map<string, string[]> {
  const dynamo = plan.target.backend === 'dynamodb' ? DYNAMO_TARGET_TABLE : undefined;
  const used = new Map<string, string[]>();
  if (dynamo === undefined && plan.source.kind === 'table') used.set(plan.source.table, []);
  for (const l of plan.lookups) {
    const table = l.table ?? dynamo ?? '';
    // A lookup of several records addresses none by key: on DynamoDB it queries by the key
    // (partition, sort) of the table; on SQLite any columns.
    if (l.kind !== 'list')
      used.set(
        table,
        l.key.map(([k]) => k),
      );
    else if (!used.has(table))
      used.set(table, dynamo === undefined ? [] : [...l.match.map(([k]) => k), ...(l.sortKey ? [l.sortKey.name] : [])]);
  }
  used.set(
    dynamo ?? plan.update.table ?? '',
    plan.update.key.map(([k]) => k),
  );
  return used;
}

/**
 * Everything wrong with a set of declarations for this fix, as diagnostics pointing into the
 * test file: a table the fix uses but the test does not declare (DF513), once any is declared;
 * a key of the other backend, a type or collation SQLite does not know, a key or index naming an
 * undeclared column, a DynamoDB table without a partition key (DF514). Empty when all is well.
 */
export function declarationProblems(plan: FixPlan, declared: Declarations): Diagnostic[] {
  if (declared.size === 0) return [];
  const out: Diagnostic[] = [];
  const used = tablesOfFix(plan);
  const unused = [...declared.keys()].filter((n) => !used.has(n));
  for (const name of used.keys()) {
    if (declared.has(name)) continue;
    // Point at a declared table the fix does not use (most likely the misspelling), else at
    // the `tables` map that lacks it.
    const typo = unused[0];
    const at =
      typo !== undefined ? (declared.get(typo)?.at as string) : (declared.values().next().value?.at ?? '/tables').replace(/\/[^/]*$/, '');
    out.push(
      testFileProblem(
        'DF513',
        at,
        `tables: the fix uses table \`${name}\`, which the test does not declare${typo !== undefined ? `; \`${typo}\` is declared but the fix does not use it: a misspelling?` : '.'} Declare every table the fix uses, or none (datafix then infers them)`,
      ),
    );
  }
  for (const [name, { decl, at }] of declared) {
    out.push(...(plan.target.backend === 'sqlite' ? sqliteDeclProblems(name, decl, at) : dynamoDeclProblems(name, decl, at)));
  }
  if (plan.target.backend === 'sqlite') {
    // Tables and indexes share one namespace in SQLite, compared without case.
    const seen = new Map<string, string>();
    const claim = (n: string, where: string, what: string) => {
      const other = seen.get(n.toLowerCase());
      if (other !== undefined) {
        out.push(
          testFileProblem('DF514', where, `${what}: the name \`${n}\` is already taken by ${other} (SQLite compares names without case)`),
        );
      } else seen.set(n.toLowerCase(), what);
    };
    for (const [name, { at }] of declared) claim(name, at, `tables.${name}`);
    for (const [name, { decl, at }] of declared) {
      for (const index of Object.keys(decl.indexes ?? {})) claim(index, `${at}/indexes/${index}`, `tables.${name}.indexes.${index}`);
    }
  }
  return out;
}

function sqliteDeclProblems(name: string, decl: TableDecl, at: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const bad = (where: string, message: string) => out.push(testFileProblem('DF514', where, message));
  const plainName = (n: string, where: string, what: string) => {
    if (!SQL_IDENT.test(n)) bad(where, `${what}: not a plain identifier (letters, digits, _)`);
    else if (/^sqlite_/i.test(n)) bad(where, `${what}: names beginning with sqlite_ are SQLite's own`);
  };
  plainName(name, at, `tables.${name}`);
  for (const key of ['partitionKey', 'sortKey'] as const) {
    if (decl[key] !== undefined)
      bad(`${at}/${key}`, `tables.${name}.${key}: a DynamoDB key; a SQLite table declares \`columns\` and \`primaryKey\``);
  }
  const columns = Object.entries(decl.columns ?? {});
  if (columns.length === 0) bad(at, `tables.${name}: declare its \`columns\` (column name: declared type)`);
  const lower = new Map<string, string>();
  for (const [col, c] of columns) {
    const where = `${at}/columns/${col}`;
    if (!SQL_IDENT.test(col)) bad(where, `tables.${name}.columns.${col}: not a plain identifier (letters, digits, _)`);
    const twin = lower.get(col.toLowerCase());
    if (twin !== undefined)
      bad(where, `tables.${name}.columns.${col}: the same column as \`${twin}\` (SQLite compares names without case)`);
    lower.set(col.toLowerCase(), col);
    const type = typeof c === 'string' || c === null ? c : (c.type ?? null);
    const words = (type ?? '').replace(/\(.*$/, '').trim().toUpperCase().split(/ +/);
    if (decl.strict && (type === null || type === '' || DECLARED_TYPE.test(type)) && !STRICT_TYPES.includes((type ?? '').toUpperCase())) {
      bad(where, `tables.${name}.columns.${col}: a STRICT table takes only ${STRICT_TYPES.join(', ')}, not \`${type ?? 'no type'}\``);
    }
    if (type !== null && type !== '' && (!DECLARED_TYPE.test(type) || words.some((w) => CONSTRAINT_WORDS.has(w)))) {
      bad(
        where,
        `tables.${name}.columns.${col}: \`${type}\` is not a type name; write one as CREATE TABLE does (TEXT, INTEGER, VARCHAR(255)), or null for none. Keys go under primaryKey and unique, a collation under collate`,
      );
    }
    const collate = typeof c === 'object' && c !== null ? c.collate : undefined;
    if (collate !== undefined && !COLLATIONS.includes(collate.toUpperCase())) {
      bad(
        `${where}/collate`,
        `tables.${name}.columns.${col}.collate: \`${collate}\` is not one of SQLite's collations (BINARY, NOCASE, RTRIM)`,
      );
    }
  }
  const names = new Set(columns.map(([c]) => c));
  const known = (cols: readonly string[], where: string, what: string) => {
    for (const c of cols) if (!names.has(c)) bad(where, `tables.${name}.${what}: \`${c}\` is not a declared column of \`${name}\``);
  };
  known(decl.primaryKey ?? [], `${at}/primaryKey`, 'primaryKey');
  for (const [i, u] of (decl.unique ?? []).entries()) known(u, `${at}/unique/${i}`, `unique[${i}]`);
  for (const [index, cols] of Object.entries(decl.indexes ?? {})) {
    const where = `${at}/indexes/${index}`;
    plainName(index, where, `tables.${name}.indexes.${index}`);
    if (Array.isArray(cols)) known(cols, where, `indexes.${index}`);
    else bad(where, `tables.${name}.indexes.${index}: a SQLite index is a list of columns`);
  }
  return out;
}

function dynamoDeclProblems(name: string, decl: TableDecl, at: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const bad = (where: string, message: string) => out.push(testFileProblem('DF514', where, message));
  for (const key of ['columns', 'primaryKey', 'unique', 'strict'] as const) {
    if (decl[key] !== undefined) {
      bad(
        `${at}/${key}`,
        `tables.${name}.${key}: a SQLite layout; a DynamoDB table declares \`partitionKey\`, \`sortKey\` and \`indexes\``,
      );
    }
  }
  if (decl.partitionKey === undefined) bad(at, `tables.${name}: declare its \`partitionKey\``);
  for (const [index, k] of Object.entries(decl.indexes ?? {})) {
    if (Array.isArray(k) || !('partitionKey' in k)) {
      bad(`${at}/indexes/${index}`, `tables.${name}.indexes.${index}: a DynamoDB index declares \`partitionKey\` (and \`sortKey\`)`);
    }
  }
  return out;
}

/** A SQLite table to create: its columns, its key (empty: rowid) and its CREATE statements. */
export interface SqliteTable {
  readonly columns: ReadonlySet<string>;
  readonly key: readonly string[];
  /** Assembled from checked identifiers and checked type names only. */
  readonly sql: readonly string[];
}

/** The SQLite tables of a case: declared exactly, or inferred untyped. Declarations must be checked. */
export function sqliteTables(plan: FixPlan, given: Tables, declared: Declarations): Map<string, SqliteTable> {
  return declared.size ? declaredSqliteTables(declared) : inferredSqliteTables(plan, given);
}

/** Untyped columns: each given value keeps the type the test wrote; keys are those the fix uses. */
function inferredSqliteTables(plan: FixPlan, given: Tables): Map<string, SqliteTable> {
  const used = tablesOfFix(plan);
  const columns = new Map<string, Set<string>>([...used.keys()].map((n) => [n, new Set<string>()]));
  if (plan.source.kind === 'table') {
    for (const r of plan.source.where ? conditionRefs(plan.source.where) : []) columns.get(plan.source.table)?.add(r.root);
  }
  for (const l of plan.lookups) {
    if (l.kind !== 'list') continue;
    for (const c of [...l.match.map(([k]) => k), ...(l.where ? conditionRefs(l.where).map((r) => r.root) : [])])
      columns.get(l.table ?? '')?.add(c);
  }
  // Every column a rule, template or extract reads exists, as in any real table.
  for (const { ref } of planRefs(plan)) {
    const column = columnReadBy(plan, ref);
    if (column) columns.get(column[0])?.add(column[1]);
  }
  const updateColumns = columns.get(plan.update.table ?? '');
  for (const f of [...plan.update.set.map((s) => s.field), ...plan.update.touch.map((t) => t.field), ...(plan.update.remove ?? [])])
    updateColumns?.add(f);
  for (const [name, rows] of Object.entries(given)) for (const row of rows) for (const c of Object.keys(row)) columns.get(name)?.add(c);
  const out = new Map<string, SqliteTable>();
  for (const [name, key] of used) {
    const cols = columns.get(name) ?? new Set<string>();
    for (const k of key) cols.add(k);
    const pk = key.length ? `, PRIMARY KEY (${key.map(quoteIdent).join(', ')})` : '';
    out.set(name, { columns: cols, key, sql: [`CREATE TABLE ${quoteIdent(name)} (${[...cols].map(quoteIdent).join(', ')}${pk})`] });
  }
  return out;
}

function declaredSqliteTables(declared: Declarations): Map<string, SqliteTable> {
  const out = new Map<string, SqliteTable>();
  for (const [name, { decl }] of declared) {
    const columns = Object.entries(decl.columns ?? {});
    const defs = columns.map(([col, c]) => {
      const type = typeof c === 'string' || c === null ? c : (c.type ?? null);
      const collate = typeof c === 'object' && c !== null ? c.collate?.toUpperCase() : undefined;
      return `${quoteIdent(col)}${type ? ` ${type}` : ''}${collate ? ` COLLATE ${collate}` : ''}`;
    });
    const list = (cols: readonly string[]) => cols.map(quoteIdent).join(', ');
    const key = decl.primaryKey ?? [];
    if (key.length) defs.push(`PRIMARY KEY (${list(key)})`);
    for (const u of decl.unique ?? []) defs.push(`UNIQUE (${list(u)})`);
    const sql = [`CREATE TABLE ${quoteIdent(name)} (${defs.join(', ')})${decl.strict ? ' STRICT' : ''}`];
    for (const [index, cols] of Object.entries(decl.indexes ?? {})) {
      if (Array.isArray(cols)) sql.push(`CREATE INDEX ${quoteIdent(index)} ON ${quoteIdent(name)} (${list(cols)})`);
    }
    out.set(name, { columns: new Set(columns.map(([c]) => c)), key, sql });
  }
  return out;
}

export type KeyType = 'S' | 'N' | 'B';
export interface DynamoAttr {
  readonly name: string;
  readonly type: KeyType;
}
/** A DynamoDB table to create: its key and its global secondary indexes. */
export interface DynamoLayout {
  readonly key: readonly DynamoAttr[];
  readonly indexes: readonly { readonly name: string; readonly key: readonly DynamoAttr[] }[];
}

/**
 * The DynamoDB tables of a case: declared, or inferred from the keys the fix addresses records
 * by (typed N where a given record holds a number). Declarations must be checked.
 *
 * @returns the layouts, or a diagnostic when the fix reads an index and nothing is declared:
 *   an index is never made up, so a fix querying one production lacks cannot pass (DF512).
 */
export function dynamoTables(
  plan: FixPlan,
  given: Tables,
  declared: Declarations,
  givenAt: string,
): Map<string, DynamoLayout> | Diagnostic {
  const out = new Map<string, DynamoLayout>();
  if (declared.size) {
    const attr = (a: KeyAttrDecl): DynamoAttr => (typeof a === 'string' ? { name: a, type: 'S' } : { name: a.name, type: a.type ?? 'S' });
    for (const [name, { decl }] of declared) {
      const indexes = Object.entries(decl.indexes ?? {}).flatMap(([index, k]) =>
        'partitionKey' in k ? [{ name: index, key: [attr(k.partitionKey), ...(k.sortKey ? [attr(k.sortKey)] : [])] }] : [],
      );
      out.set(name, { key: decl.partitionKey ? [attr(decl.partitionKey), ...(decl.sortKey ? [attr(decl.sortKey)] : [])] : [], indexes });
    }
    return out;
  }
  const index =
    (plan.source.kind !== 'table' ? plan.source.index : undefined) ??
    plan.lookups.flatMap((l) => (l.kind === 'list' && l.index !== undefined ? [l.index] : []))[0];
  if (index !== undefined) {
    return testFileProblem(
      'DF512',
      givenAt,
      `the fix reads index \`${index}\`: declare the tables' keys and indexes under \`tables\` (datafix test never creates an index the test does not declare)`,
    );
  }
  for (const [name, key] of tablesOfFix(plan)) {
    const items = given[name] ?? [];
    const typeOf = (a: string): KeyType =>
      items.some((i) => isNumberValue(i[a])) ? 'N' : items.some((i) => i[a] instanceof Uint8Array) ? 'B' : 'S';
    out.set(name, { key: key.map((k) => ({ name: k, type: typeOf(k) })), indexes: [] });
  }
  return out;
}

/** A number as a given record holds it: a plain number, or an exact one (`{ $number: "…" }`). */
export function isNumberValue(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'object' && v !== null && 'toBigInt' in v);
}

/**
 * A record's key as text for matching records by key, with numbers by value: DynamoDB's N 5 read
 * back (a NumberValue), the 5 a test wrote and `{ $number: "5.0" }` are one key.
 */
export function recordKeyId(record: Item, key: readonly string[]): string {
  return JSON.stringify(
    key.map((k) => {
      const v = record[k];
      const n = exactNumberText(v) ?? (typeof v === 'number' ? String(v) : undefined);
      if (n === undefined) return formatValue(v, Number.POSITIVE_INFINITY);
      const asDouble = Number(n);
      return `#${Number.isSafeInteger(asDouble) || String(asDouble) === n ? String(asDouble) : n}`;
    }),
  );
}

const NUMBER_TEXT = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Tags in `given` records that would otherwise become some other value in silence: a `$number`
 * that is not a decimal number (`"abc"`, `"0x10"`), a `$binary` that is not base64, and
 * `$absent`, which names no value (a field is absent by being left out). DF515, at each.
 */
export function givenTagProblems(value: unknown, at: string): Diagnostic[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => givenTagProblems(v, `${at}/${i}`));
  if (value === null || typeof value !== 'object') return [];
  const entries = Object.entries(value);
  const [tag, inner] = (entries[0] ?? []) as [string | undefined, unknown];
  if (entries.length === 1 && tag === '$number' && (typeof inner !== 'string' || !NUMBER_TEXT.test(inner))) {
    return [testFileProblem('DF515', `${at}/$number`, `${JSON.stringify(inner)} is not a decimal number; write { $number: "123.45" }`)];
  }
  if (entries.length === 1 && tag === '$binary' && (typeof inner !== 'string' || !BASE64.test(inner))) {
    return [
      testFileProblem('DF515', `${at}/$binary`, `${JSON.stringify(inner)} is not base64; write the bytes as standard base64 with padding`),
    ];
  }
  if (entries.length === 1 && tag === '$absent') {
    return [testFileProblem('DF515', at, '{ $absent } names no value: leave the field out of the record, or give null for a NULL')];
  }
  return entries.flatMap(([k, v]) => givenTagProblems(v, `${at}/${k}`));
}
