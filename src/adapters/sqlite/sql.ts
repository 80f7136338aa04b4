/** The only place SQL text is assembled: from checked identifiers and `?` placeholders. */
import type { Condition } from '../../plan/types.js';

export const SQL_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Quotes a checked identifier; anything else is refused, never escaped. */
export function quoteIdent(name: string): string {
  if (!SQL_IDENT.test(name) && name !== 'rowid') throw new Error(`refusing SQL identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** Compiles a `where` condition (refs are bare column names) to SQL with bound parameters. */
export function compileWhere(cond: Condition): { sql: string; params: unknown[] } {
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
    }
  };
  return { sql: walk(cond), params };
}

function and(parts: string[]): string {
  return parts.length ? `(${parts.join(' AND ')})` : '1';
}
