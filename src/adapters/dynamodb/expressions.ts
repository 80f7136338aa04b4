/**
 * Compiles plan conditions and key conditions into DynamoDB expression strings. Every attribute
 * name goes through ExpressionAttributeNames and every value through ExpressionAttributeValues,
 * so reserved words (`status`, `name`, `data`), dots and dashes in names, and any value type are
 * safe by construction: no user text is ever spliced into an expression.
 */
import { DatafixError } from '../../errors.js';
import { DYNAMODB_TYPES } from '../../plan/compare.js';
import type { Condition, Ref, SortKeyOp, TypeName, ValueTestOp } from '../../plan/types.js';

/** A compiled piece of an expression, or a constant when the condition folds away. */
type Compiled = string | boolean;

/** Collects the name and value placeholders of one request's expressions. */
export class ExpressionBuilder {
  private readonly nameIds = new Map<string, string>();
  private readonly constantIds = new Map<string, string>();
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, unknown> = {};
  private valueCount = 0;

  /** The placeholder for one attribute name (one placeholder per distinct name). */
  name(attribute: string): string {
    let id = this.nameIds.get(attribute);
    if (id === undefined) {
      id = `#n${this.nameIds.size}`;
      this.nameIds.set(attribute, id);
      this.names[id] = attribute;
    }
    return id;
  }

  /**
   * A document path: the top-level attribute, then nested map keys (`.#n`) and list positions
   * (`[N]`, at the positions of `path` listed in `indexes`).
   */
  path(root: string, path: readonly string[] = [], indexes: readonly number[] = []): string {
    let out = this.name(root);
    path.forEach((segment, i) => {
      out += indexes.includes(i) ? `[${Number(segment)}]` : `.${this.name(segment)}`;
    });
    return out;
  }

  /** A fresh placeholder for a value. */
  value(value: unknown): string {
    const id = `:v${this.valueCount++}`;
    this.values[id] = value;
    return id;
  }

  /**
   * A placeholder for a fixed operand such as the type name "NULL" or the empty string, shared by
   * every use in the request (DynamoDB rejects values that no expression uses, never repeated ones).
   */
  constant(label: string, value: unknown): string {
    let id = this.constantIds.get(label);
    if (id === undefined) {
      id = `:${label}`;
      this.constantIds.set(label, id);
      this.values[id] = value;
    }
    return id;
  }

  /** ExpressionAttributeNames, or undefined when no name was used (DynamoDB rejects an empty map). */
  get attributeNames(): Record<string, string> | undefined {
    return this.nameIds.size > 0 ? { ...this.names } : undefined;
  }

  /** ExpressionAttributeValues, or undefined when no value was used. */
  get attributeValues(): Record<string, unknown> | undefined {
    return Object.keys(this.values).length > 0 ? { ...this.values } : undefined;
  }
}

const nullType = (b: ExpressionBuilder): string => b.constant('null_t', 'NULL');
const emptyString = (b: ExpressionBuilder): string => b.constant('empty', '');

function refPath(ref: Ref, b: ExpressionBuilder): string {
  return b.path(ref.root, ref.path, ref.indexes);
}

/** Absent or NULL, the engine's `isAbsent`. */
export function absentExpression(path: string, b: ExpressionBuilder): string {
  return `(attribute_not_exists(${path}) OR attribute_type(${path}, ${nullType(b)}))`;
}

function presentExpression(path: string, b: ExpressionBuilder): string {
  return `(attribute_exists(${path}) AND NOT attribute_type(${path}, ${nullType(b)}))`;
}

// `NOT (p = :empty)` rather than `p <> :empty`: an equality between different types is false,
// so a number or a map is "not the empty string" without relying on how `<>` treats types.
function existsExpression(path: string, b: ExpressionBuilder): string {
  return `(attribute_exists(${path}) AND NOT attribute_type(${path}, ${nullType(b)}) AND NOT (${path} = ${emptyString(b)}))`;
}

function missingExpression(path: string, b: ExpressionBuilder): string {
  return `(attribute_not_exists(${path}) OR attribute_type(${path}, ${nullType(b)}) OR ${path} = ${emptyString(b)})`;
}

function combine(parts: readonly Compiled[], op: 'AND' | 'OR'): Compiled {
  // AND folds on false, OR on true; the neutral constant drops out.
  const absorbing = op === 'OR';
  const kept: string[] = [];
  for (const part of parts) {
    if (part === absorbing) return absorbing;
    if (typeof part === 'string') kept.push(part);
  }
  if (kept.length === 0) return !absorbing;
  if (kept.length === 1) return kept[0] as string;
  return `(${kept.join(` ${op} `)})`;
}

/**
 * Compiles a condition with the engine's semantics (src/engine/context.ts `evaluate`):
 * `exists` is present, not NULL and not ""; `missing` is its negation; `isNull` is absent or NULL;
 * `equals` with a null value means `isNull`. Returns `true`/`false` when the condition is constant.
 */
export function compileCondition(cond: Condition, b: ExpressionBuilder): Compiled {
  switch (cond.op) {
    case 'exists':
      return combine(
        cond.refs.map((r) => existsExpression(refPath(r, b), b)),
        'AND',
      );
    case 'missing':
      return combine(
        cond.refs.map((r) => missingExpression(refPath(r, b), b)),
        'AND',
      );
    case 'isNull':
      return combine(
        cond.refs.map((r) => absentExpression(refPath(r, b), b)),
        'AND',
      );
    case 'notNull':
      return combine(
        cond.refs.map((r) => presentExpression(refPath(r, b), b)),
        'AND',
      );
    case 'equals':
      return combine(
        cond.pairs.map(({ ref, value }) => {
          const path = refPath(ref, b);
          return value === null || value === undefined ? absentExpression(path, b) : `${path} = ${b.value(value)}`;
        }),
        'AND',
      );
    case 'all':
      return combine(
        cond.of.map((c) => compileCondition(c, b)),
        'AND',
      );
    case 'any':
      return combine(
        cond.of.map((c) => compileCondition(c, b)),
        'OR',
      );
    case 'not': {
      const inner = compileCondition(cond.of, b);
      return typeof inner === 'boolean' ? !inner : `(NOT (${inner}))`;
    }
    case 'expr':
      // The compiler refuses expressions in `filter` (DF234): DynamoDB cannot evaluate them.
      throw new Error('an expression cannot be part of a DynamoDB filter');
    default: {
      const op = cond.op;
      return combine(
        cond.tests.map(({ ref, values }) => valueTestExpression(op, refPath(ref, b), values, b)),
        'AND',
      );
    }
  }
}

const COMPARATORS: Readonly<Record<'lt' | 'lte' | 'gt' | 'gte', string>> = { lt: '<', lte: '<=', gt: '>', gte: '>=' };

/**
 * One comparison in DynamoDB's own syntax: `<`, `BETWEEN`, `IN`, `begins_with`, `contains`,
 * `attribute_type`. The engine's `satisfiesStrict` (src/plan/compare.ts) decides the same
 * tests in skip and fail rules by the same rules.
 */
function valueTestExpression(op: ValueTestOp, path: string, values: readonly unknown[], b: ExpressionBuilder): string {
  const [first, second] = values;
  switch (op) {
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return `${path} ${COMPARATORS[op]} ${b.value(first)}`;
    case 'between':
      return `${path} BETWEEN ${b.value(first)} AND ${b.value(second)}`;
    case 'in':
      return `${path} IN (${values.map((v) => b.value(v)).join(', ')})`;
    case 'beginsWith':
      return `begins_with(${path}, ${b.value(first)})`;
    case 'contains':
      return `contains(${path}, ${b.value(first)})`;
    case 'type':
      return `attribute_type(${path}, ${b.value(DYNAMODB_TYPES[first as TypeName])})`;
  }
}

/**
 * A FilterExpression for a condition, or undefined when it always holds. A condition that can
 * never hold still needs an expression: it tests one made-up attribute both ways.
 */
export function filterExpression(cond: Condition, b: ExpressionBuilder): string | undefined {
  const compiled = compileCondition(cond, b);
  if (compiled === true) return undefined;
  if (compiled === false) {
    const never = b.name('datafix:never');
    return `(attribute_exists(${never}) AND attribute_not_exists(${never}))`;
  }
  return compiled;
}

const SORT_OPERATORS: Record<Exclude<SortKeyOp, 'beginsWith' | 'between'>, string> = {
  equals: '=',
  lt: '<',
  lte: '<=',
  gt: '>',
  gte: '>=',
};

/** The KeyConditionExpression of a query: partition key equality and at most one sort-key test. */
export function keyConditionExpression(
  partitionKey: { readonly name: string; readonly value: string | number },
  sortKey: { readonly name: string; readonly op: SortKeyOp; readonly values: readonly (string | number)[] } | undefined,
  b: ExpressionBuilder,
): string {
  const parts = [`${b.name(partitionKey.name)} = ${b.value(partitionKey.value)}`];
  if (sortKey) {
    const sk = b.name(sortKey.name);
    const expected = sortKey.op === 'between' ? 2 : 1;
    if (sortKey.values.length !== expected) {
      throw new DatafixError(
        'config',
        'DF404',
        `sort key condition \`${sortKey.op}\` on \`${sortKey.name}\` needs ${expected} value(s), got ${sortKey.values.length}; fix source.query.key.${sortKey.name}`,
      );
    }
    const [first, second] = sortKey.values as [string | number, string | number];
    if (sortKey.op === 'beginsWith') parts.push(`begins_with(${sk}, ${b.value(first)})`);
    else if (sortKey.op === 'between') {
      parts.push(`${sk} BETWEEN ${b.value(first)} AND ${b.value(second)}`);
    } else parts.push(`${sk} ${SORT_OPERATORS[sortKey.op]} ${b.value(first)}`);
  }
  return parts.join(' AND ');
}

/** Above this many leaves a structural comparison would crowd DynamoDB's 4 KB expression limit. */
const MAX_STRUCTURAL_LEAVES = 40;

function leafCount(value: unknown, budget: number): number {
  if (
    value === null ||
    typeof value !== 'object' ||
    value instanceof Set ||
    value instanceof Uint8Array ||
    value.constructor?.name === 'NumberValue'
  )
    return 1;
  let n = 1;
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    n += leafCount(v, budget - n);
    if (n > budget) break;
  }
  return n;
}

/**
 * `path` holds exactly `value`. Maps and lists are compared member by member (with `size` so no
 * extra member slips through) where they are small: some DynamoDB-compatible servers compare
 * maps and lists by identity, while DynamoDB's own `=` and this expansion agree everywhere.
 */
export function equalsExpression(path: string, value: unknown, b: ExpressionBuilder): string {
  const structural =
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Set) &&
    !(value instanceof Uint8Array) &&
    value.constructor?.name !== 'NumberValue' &&
    leafCount(value, MAX_STRUCTURAL_LEAVES + 1) <= MAX_STRUCTURAL_LEAVES;
  if (!structural) {
    if (value === null) return `attribute_type(${path}, ${b.value('NULL')})`;
    return `${path} = ${b.value(value)}`;
  }
  if (Array.isArray(value)) {
    const parts = [`attribute_type(${path}, ${b.value('L')})`, `size(${path}) = ${b.value(value.length)}`];
    value.forEach((v, i) => {
      parts.push(equalsExpression(`${path}[${i}]`, v, b));
    });
    return `(${parts.join(' AND ')})`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  const parts = [`attribute_type(${path}, ${b.value('M')})`, `size(${path}) = ${b.value(entries.length)}`];
  for (const [k, v] of entries) parts.push(equalsExpression(`${path}.${b.name(k)}`, v, b));
  return `(${parts.join(' AND ')})`;
}
