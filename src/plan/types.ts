/**
 * The compiled fix: readonly, JSON-serialisable and backend-neutral. It is the only thing the
 * engine sees, so everything the engine needs (step order, guards, defaults) is decided here,
 * once, by src/language/compile.ts.
 */

/** A reference into the record context: `root` is the source alias, a lookup, an extract or `now`. */
export interface Ref {
  readonly root: string;
  readonly path: readonly string[];
  /**
   * Positions in `path` written as a list position (`tags[0]` or `tags.0`). Such a segment reads
   * a list element only; any other segment (`m["0"]`, `m.name`) reads a map key only, on every
   * backend alike (DynamoDB: `#tags[0]` against `#m.#n`). Absent when there is none.
   */
  readonly indexes?: readonly number[];
  /** The reference as written, for messages. */
  readonly text: string;
}

/**
 * An expression (CEL) as written, with the context names it reads; compiled by the engine once
 * per process from `source` (src/language/expr/). `records` are the names among `roots` that
 * are lookups: one that found nothing reads as an empty map.
 */
export interface ExprPlan {
  readonly source: string;
  readonly roots: readonly string[];
  readonly records?: readonly string[];
  /** What it reads: `row.email` as a one-segment reference, a root alone when it uses all of it. */
  readonly reads?: readonly Ref[];
}

/**
 * A compiled template. `ref` keeps the referenced value's type (a map stays a map); `string`
 * interpolates into text. A template whose reference is missing renders as "missing" and is
 * never written.
 */
export type Template =
  | { readonly kind: 'literal'; readonly value: unknown }
  | { readonly kind: 'ref'; readonly ref: Ref }
  | { readonly kind: 'string'; readonly parts: readonly (string | Ref)[] }
  /** `"{{ expression }}"` alone: the expression's value, with its type. */
  | { readonly kind: 'expr'; readonly expr: ExprPlan }
  /** Text around placeholders of which at least one is an expression. */
  | { readonly kind: 'text'; readonly parts: readonly (string | Ref | ExprPlan)[] }
  | { readonly kind: 'object'; readonly entries: readonly (readonly [string, Template])[] }
  | { readonly kind: 'array'; readonly items: readonly Template[] };

/** A compiled condition. For SQL `where` and DynamoDB `filter`, `root` is a column/attribute name. */
export type Condition =
  | { readonly op: 'exists' | 'missing' | 'isNull' | 'notNull'; readonly refs: readonly Ref[] }
  | { readonly op: 'equals'; readonly pairs: readonly { readonly ref: Ref; readonly value: unknown }[] }
  | { readonly op: ValueTestOp; readonly tests: readonly ValueTest[] }
  | { readonly op: 'all' | 'any'; readonly of: readonly Condition[] }
  | { readonly op: 'not'; readonly of: Condition }
  /** A CEL expression giving a bool; evaluated by the engine only (never pushed down). */
  | { readonly op: 'expr'; readonly expr: ExprPlan };

/**
 * The comparisons that push down to the database (SQL `where`, DynamoDB `filter`) and that skip
 * and fail rules evaluate with the database's own meaning (the adapter's `satisfies`).
 */
export type ValueTestOp = 'lt' | 'lte' | 'gt' | 'gte' | 'between' | 'beginsWith' | 'contains' | 'in' | 'type';

/**
 * One reference tested against constant operands: one value for `lt`…`gte`, `beginsWith` and
 * `contains`; `[low, high]` for `between`; the candidates for `in`; one `TypeName` for `type`.
 */
export interface ValueTest {
  readonly ref: Ref;
  readonly values: readonly unknown[];
}

/**
 * Backend-neutral type names of the `type` test. SQLite: `string` text, `number` integer or real,
 * `integer`, `real`, `binary` blob, `null`. DynamoDB: `string` S, `number` N, `binary` B,
 * `boolean` BOOL, `null` NULL, `map` M, `list` L, `stringSet` SS, `numberSet` NS, `binarySet` BS.
 */
export type TypeName =
  | 'string'
  | 'number'
  | 'integer'
  | 'real'
  | 'binary'
  | 'boolean'
  | 'null'
  | 'map'
  | 'list'
  | 'stringSet'
  | 'numberSet'
  | 'binarySet';

/** The type names each backend knows, in the order docs list them. */
export const TYPE_NAMES: Readonly<Record<'sqlite' | 'dynamodb', readonly TypeName[]>> = {
  sqlite: ['string', 'number', 'integer', 'real', 'binary', 'null'],
  dynamodb: ['string', 'number', 'binary', 'boolean', 'null', 'map', 'list', 'stringSet', 'numberSet', 'binarySet'],
};

export type TargetPlan =
  | { readonly backend: 'sqlite'; readonly path: string; readonly busyTimeoutMs: number }
  | {
      readonly backend: 'dynamodb';
      readonly table: string;
      readonly region: string;
      readonly endpoint?: string;
    };

export type SortKeyOp = 'equals' | 'beginsWith' | 'between' | 'lt' | 'lte' | 'gt' | 'gte';

export type SourcePlan =
  | {
      readonly kind: 'table';
      readonly as: string;
      readonly table: string;
      readonly where?: Condition;
    }
  | {
      readonly kind: 'query';
      readonly as: string;
      readonly index?: string;
      readonly partitionKey: { readonly name: string; readonly value: string | number };
      readonly sortKey?: {
        readonly name: string;
        readonly op: SortKeyOp;
        readonly values: readonly (string | number)[];
      };
      readonly newestFirst: boolean;
      readonly filter?: Condition;
      readonly consistentRead: boolean;
    }
  | {
      readonly kind: 'scan';
      readonly as: string;
      readonly index?: string;
      readonly filter?: Condition;
      readonly segments: number;
      readonly consistentRead: boolean;
    };

/** A lookup of one record by its full key (`get`); missing in the context when none is found. */
export interface GetLookupPlan {
  /** Absent in plans saved before lookups of several records existed. */
  readonly kind?: 'get';
  readonly name: string;
  /** Undefined means the target's own table (DynamoDB). */
  readonly table?: string;
  readonly key: readonly (readonly [string, Template])[];
  readonly consistentRead: boolean;
  /** Context roots this lookup's key needs. */
  readonly needs: readonly string[];
}

/**
 * A lookup of every record that matches (a DynamoDB `query`, a SQLite `where`), at most `max`:
 * in the context a list of records in key order, empty when none matches. A record for which
 * more than `max` match fails with `lookup_over_max`.
 */
export interface ListLookupPlan {
  readonly kind: 'list';
  readonly name: string;
  /** How the spec selects the records: a DynamoDB `query` or a SQLite `where`. */
  readonly by: 'query' | 'where';
  /** Undefined means the target's own table (DynamoDB). */
  readonly table?: string;
  /** DynamoDB: the index queried; undefined means the table. */
  readonly index?: string;
  /**
   * Equalities rendered per record: SQLite columns, or the DynamoDB partition key (one entry).
   * A record whose values render missing matches nothing (an empty list).
   */
  readonly match: readonly (readonly [string, Template])[];
  /** DynamoDB: the sort-key condition, its values rendered per record. */
  readonly sortKey?: { readonly name: string; readonly op: SortKeyOp; readonly values: readonly Template[] };
  /** SQLite: a condition on the table's own columns (bare names) that holds for every record. */
  readonly where?: Condition;
  /** The most records one source record may have; more fails that record. */
  readonly max: number;
  readonly consistentRead: boolean;
  /** Context roots this lookup's templates need. */
  readonly needs: readonly string[];
}

export type LookupPlan = GetLookupPlan | ListLookupPlan;

export interface ExtractPlan {
  readonly name: string;
  readonly from: Ref;
  readonly parse?: 'json';
  /** JSONPath expressions, tried in order; the first non-missing match wins. */
  readonly paths: readonly string[];
  /** A CEL expression applied to the extracted value, which it reads as `value`. */
  readonly then?: ExprPlan;
  readonly needs: readonly string[];
}

/** A skip or fail rule: a named condition. */
export interface SkipRulePlan {
  readonly reason: string;
  readonly when: Condition;
  readonly needs: readonly string[];
}

/** A fail rule has the shape of a skip rule; a record it matches counts as failed with its reason. */
export type FailRulePlan = SkipRulePlan;

/** One step of the per-page pipeline, in execution order. */
export type Step =
  | { readonly kind: 'lookup'; readonly name: string }
  | { readonly kind: 'extract'; readonly name: string }
  | { readonly kind: 'skip'; readonly index: number }
  | { readonly kind: 'fail'; readonly index: number }
  | { readonly kind: 'fetchTarget' };

export interface SetFieldPlan {
  readonly field: string;
  readonly template: Template;
  /** false: fill-only (write only where absent/NULL); true: may replace a value that differs. */
  readonly overwrite: boolean;
}

/**
 * The write a fix makes: an update of named fields (absent), a guarded delete of the whole record
 * (`delete`: only where it still equals its before-image), or a create-if-absent (`create`: key
 * plus `set`, only where no record has the key).
 */
export type WriteAction = 'delete' | 'create';

export interface UpdatePlan {
  /** Absent: an update (`update` section); otherwise the `delete` or `create` section. */
  readonly action?: WriteAction;
  /** Undefined means the target's own table (DynamoDB). */
  readonly table?: string;
  readonly key: readonly (readonly [string, Template])[];
  readonly set: readonly SetFieldPlan[];
  /**
   * Fields the update removes (`update.remove`): DynamoDB REMOVE, SQLite NULL. Absent when none,
   * so the plans of fixes without it read as before.
   */
  readonly remove?: readonly string[];
  readonly touch: readonly { readonly field: string; readonly template: Template }[];
  /**
   * Where the engine finds the record's current values: the source record itself (or a lookup)
   * when the update key is that record's own key, otherwise a fetch by the rendered key.
   */
  readonly before: { readonly kind: 'context'; readonly root: string } | { readonly kind: 'fetch' };
}

export interface RunPlan {
  readonly concurrency: number;
  readonly batchSize: number;
  readonly pageSize: number;
  readonly limit?: number;
}

export interface FixPlan {
  readonly planVersion: 1;
  readonly fix: string;
  readonly description?: string;
  /** sha256 of the spec file's bytes. */
  readonly specChecksum: string;
  readonly target: TargetPlan;
  readonly source: SourcePlan;
  readonly lookups: readonly LookupPlan[];
  readonly extracts: readonly ExtractPlan[];
  readonly skip: readonly SkipRulePlan[];
  /** Fail rules, evaluated after every skip rule; absent in plans saved before they existed. */
  readonly fail?: readonly FailRulePlan[];
  readonly steps: readonly Step[];
  readonly update: UpdatePlan;
  readonly run: RunPlan;
}
