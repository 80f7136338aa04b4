/**
 * The fix spec as a user writes it in YAML, after schema validation and before compilation.
 * Every field here is documented for users in docs/spec.md and in schemas/fix.schema.json.
 * The compiled, backend-neutral form the engine runs is `FixPlan` in src/plan/types.ts.
 */

/** A reference such as `row.raw_response`, `job.mediaId` or `now`. */
export type RefText = string;

/** A `{{ ref }}` template, or any literal value (written as is). */
export type TemplateValue = unknown;

/** Structured condition: exactly one operator per object. Lists under exists/missing/isNull/notNull mean "all of". */
export interface ConditionSpec {
  exists?: RefText | RefText[];
  missing?: RefText | RefText[];
  isNull?: RefText | RefText[];
  notNull?: RefText | RefText[];
  equals?: Record<RefText, unknown>;
  lt?: Record<RefText, unknown>;
  lte?: Record<RefText, unknown>;
  gt?: Record<RefText, unknown>;
  gte?: Record<RefText, unknown>;
  /** Reference → `[low, high]`, both inclusive. */
  between?: Record<RefText, unknown>;
  beginsWith?: Record<RefText, unknown>;
  contains?: Record<RefText, unknown>;
  /** Reference → a non-empty list of candidate values. */
  in?: Record<RefText, unknown>;
  /** Reference → a type name (`string`, `number`, …; see TypeName in src/plan/types.ts). */
  type?: Record<RefText, unknown>;
  all?: ConditionSpec[];
  any?: ConditionSpec[];
  not?: ConditionSpec;
  /** A CEL expression giving true or false (skip and fail rules only; never pushed down). */
  expr?: string;
}

export interface SqliteTargetSpec {
  path: string;
  busyTimeoutMs?: number | string;
}

export interface DynamoTargetSpec {
  table: string;
  region?: string;
  endpoint?: string;
}

export interface TargetSpec {
  sqlite?: SqliteTargetSpec;
  dynamodb?: DynamoTargetSpec;
}

/** A sort-key condition in a DynamoDB query. */
export interface SortKeyConditionSpec {
  equals?: string | number;
  beginsWith?: string;
  between?: [string | number, string | number];
  lt?: string | number;
  lte?: string | number;
  gt?: string | number;
  gte?: string | number;
}

export interface QuerySpec {
  index?: string;
  /** Partition key equality, plus at most one sort-key condition. */
  key: Record<string, string | number | SortKeyConditionSpec>;
  newestFirst?: boolean;
  pageSize?: number;
  filter?: ConditionSpec;
  consistentRead?: boolean;
}

export interface ScanSpec {
  index?: string;
  filter?: ConditionSpec;
  pageSize?: number;
  segments?: number;
  consistentRead?: boolean;
}

export interface SourceSpec {
  as: string;
  /** SQLite: the table to read. */
  table?: string;
  /** SQLite: structured row filter, compiled to SQL with checked column names and bound values. */
  where?: ConditionSpec;
  /** SQLite: the page size for keyset paging. */
  pageSize?: number;
  /** DynamoDB: query a table or index. */
  query?: QuerySpec;
  /** DynamoDB: scan a table or index. */
  scan?: ScanSpec;
}

export interface LookupSpec {
  /** Key of the one record to fetch: attribute/column name → template. */
  get?: Record<string, TemplateValue>;
  /** DynamoDB: every item of one partition (and sort-key condition); values are templates. */
  query?: LookupQuerySpec;
  /** SQLite: every row of `table` matching; `equals` values at its top may be templates. */
  where?: ConditionSpec;
  /** With `query`/`where`: the most records one source record may have (more fails it). */
  max?: number;
  /** Table to read from; DynamoDB defaults to the target table, SQLite requires it. */
  table?: string;
  consistentRead?: boolean;
}

/** A lookup's DynamoDB query: the partition key and an optional sort-key condition, as templates. */
export interface LookupQuerySpec {
  index?: string;
  key: Record<string, TemplateValue | Record<string, TemplateValue>>;
}

export interface ExtractSpec {
  from: RefText;
  parse?: 'json';
  path?: string;
  first?: string[];
  /** A CEL expression applied to the extracted value, read as `value`. */
  then?: string;
}

export interface SkipRuleSpec {
  reason: string;
  when: ConditionSpec;
}

export interface UpdateSpec {
  /** SQLite: the table to write; defaults to the source table. DynamoDB: always the target table. */
  table?: string;
  key: Record<string, TemplateValue>;
  /** Required unless `remove` is given. */
  set?: Record<string, TemplateValue>;
  /** Fields to remove (DynamoDB REMOVE, SQLite NULL), where present. */
  remove?: string[];
  touch?: Record<string, TemplateValue>;
  /** `true` lets every `set` field replace an existing value; a list names the fields that may. */
  overwrite?: boolean | string[];
}

/** `delete`: the record to delete, guarded on its whole before-image. */
export interface DeleteSpec {
  table?: string;
  key: Record<string, TemplateValue>;
}

/** `create`: a record created only where none has the key. */
export interface CreateSpec {
  table?: string;
  key: Record<string, TemplateValue>;
  set: Record<string, TemplateValue>;
}

export interface RunSpec {
  concurrency?: number | string;
  batchSize?: number | string;
  pageSize?: number | string;
  limit?: number | string;
}

export interface FixSpec {
  name: string;
  description?: string;
  target: TargetSpec;
  source: SourceSpec;
  lookups?: Record<string, LookupSpec>;
  extract?: Record<string, ExtractSpec>;
  skip?: SkipRuleSpec[];
  /** Fail rules: like `skip`, but a matching record counts as failed with the reason. */
  fail?: SkipRuleSpec[];
  /** Exactly one of `update`, `delete` and `create`. */
  update?: UpdateSpec;
  delete?: DeleteSpec;
  create?: CreateSpec;
  run?: RunSpec;
}
