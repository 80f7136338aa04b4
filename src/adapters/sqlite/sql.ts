/** The only place SQL text is assembled: from checked identifiers and `?` placeholders. */
import type { Condition, ValueTestOp } from '../../plan/types.js';
import type { BuiltInCollation } from './collation.js';

export const SQL_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Quotes a checked identifier; anything else is refused, never escaped. */
export function quoteIdent(name: string): string {
  if (!SQL_IDENT.test(name) && name !== 'rowid') throw new Error(`refusing SQL identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/**
 * What `typeof()` answers for each type name of a `type` test on SQLite
 * (https://www.sqlite.org/datatype3.html, 2. Storage Classes and Datatypes).
 */
const SQLITE_TYPES: Readonly<Record<string, readonly string[]>> = {
  string: ['text'],
  number: ['integer', 'real'],
  integer: ['integer'],
  real: ['real'],
  binary: ['blob'],
  null: ['null'],
};

const COMPARE_SQL: Readonly<Record<'lt' | 'lte' | 'gt' | 'gte', string>> = { lt: '<', lte: '<=', gt: '>', gte: '>=' };

/**
 * SQL for one value test of `operand` (a quoted column, or the column of a one-row subquery that
 * holds a value read), pushing its values to `params`. The one definition both a `where` (run
 * by SQLite over the table) and a skip or fail rule (run by SQLite over the value read) use, so
 * the two cannot disagree:
 * - `lt`…`gte`, `between`, `in`: SQLite's own operators (datatype3 §4: values of different
 *   storage classes order NULL < numbers < text < blob; numbers by value; text by collation);
 * - `beginsWith`: text whose first characters equal the prefix by the collation;
 * - `contains`: text holding the substring (ASCII case folded under NOCASE, as NOCASE compares);
 * - `type`: `typeof()`.
 * Every test is two-valued: NULL satisfies none (only `type: null`), so `not` keeps NULL rows
 * exactly as the same condition in a rule does.
 *
 * @param collation the column's collation; undefined where SQLite applies it itself (a column
 *   operand compared with an operator), given where a function result is compared.
 */
export function valueTestSql(
  op: ValueTestOp,
  operand: string,
  values: readonly unknown[],
  params: unknown[],
  collation: BuiltInCollation | undefined,
): string {
  const x = collation ? `${operand} COLLATE ${collation}` : operand;
  const bind = (v: unknown): string => {
    params.push(v);
    return '?';
  };
  switch (op) {
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return `(${operand} IS NOT NULL AND ${x} ${COMPARE_SQL[op]} ${bind(values[0])})`;
    case 'between':
      return `(${operand} IS NOT NULL AND ${x} BETWEEN ${bind(values[0])} AND ${bind(values[1])})`;
    case 'in':
      return `(${operand} IS NOT NULL AND ${x} IN (${values.map(bind).join(', ')}))`;
    case 'beginsWith':
      return `(typeof(${operand}) = 'text' AND substr(${operand}, 1, length(${bind(values[0])})) = ${bind(values[0])} COLLATE ${collation ?? 'BINARY'})`;
    case 'contains':
      return collation === 'NOCASE'
        ? `(typeof(${operand}) = 'text' AND instr(lower(${operand}), lower(${bind(values[0])})) > 0)`
        : `(typeof(${operand}) = 'text' AND instr(${operand}, ${bind(values[0])}) > 0)`;
    case 'type':
      return `(typeof(${operand}) IN (${(SQLITE_TYPES[String(values[0])] ?? []).map(bind).join(', ')}))`;
  }
}

/**
 * Compiles a `where` condition (refs are bare column names) to SQL with bound parameters.
 * `collationOf` gives a column's collation, for the tests that compare a function's result
 * (`beginsWith`, `contains`): SQLite applies a column's collation to the column itself, not to
 * `substr()` or `instr()` over it, so every caller names it (no BINARY default to forget).
 */
export function compileWhere(cond: Condition, collationOf: (column: string) => BuiltInCollation): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const walk = (c: Condition): string => {
    switch (c.op) {
      case 'exists':
        // BINARY: only the empty string is empty, also under RTRIM (where '  ' = '' is true).
        return and(c.refs.map((r) => `(${quoteIdent(r.root)} IS NOT NULL AND ${quoteIdent(r.root)} <> '' COLLATE BINARY)`));
      case 'missing':
        return and(c.refs.map((r) => `(${quoteIdent(r.root)} IS NULL OR ${quoteIdent(r.root)} = '' COLLATE BINARY)`));
      case 'isNull':
        return and(c.refs.map((r) => `${quoteIdent(r.root)} IS NULL`));
      case 'notNull':
        return and(c.refs.map((r) => `${quoteIdent(r.root)} IS NOT NULL`));
      case 'expr':
        // The compiler refuses expressions in `where` (DF234): they cannot become SQL.
        throw new Error('an expression cannot be part of a SQL where');
      case 'equals':
        return and(
          c.pairs.map(({ ref, value }) => {
            if (value === null) return `${quoteIdent(ref.root)} IS NULL`;
            // Values go as they are; the adapter binds them as it binds every value (toSqlValue).
            params.push(value);
            // IS, not =: a NULL column compares false rather than unknown, so `not` keeps it,
            // exactly as the same condition does in a skip rule.
            return `${quoteIdent(ref.root)} IS ?`;
          }),
        );
      case 'all':
        return and(c.of.map(walk));
      case 'any':
        return c.of.length ? `(${c.of.map(walk).join(' OR ')})` : '0';
      case 'not':
        return `NOT (${walk(c.of)})`;
      default: {
        const op = c.op;
        return and(
          c.tests.map((t) =>
            valueTestSql(
              op,
              quoteIdent(t.ref.root),
              t.values,
              params,
              op === 'beginsWith' || op === 'contains' ? collationOf(t.ref.root) : undefined,
            ),
          ),
        );
      }
    }
  };
  return { sql: walk(cond), params };
}

function and(parts: string[]): string {
  return parts.length ? `(${parts.join(' AND ')})` : '1';
}
