/**
 * Spec as written → FixPlan. Everything that can be known before touching data is decided here:
 * environment values, defaults, parsed templates and conditions, checked references and
 * JSONPaths, and the order of the per-page steps (each skip rule runs as soon as the data it
 * reads is there, and never before an earlier rule).
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { DatafixError, type Diagnostic } from '../errors.js';
import { conditionRefs } from '../plan/conditions.js';
import { ENGINE_REASONS } from '../plan/reasons.js';
import type {
  Condition,
  ExtractPlan,
  FixPlan,
  LookupPlan,
  Ref,
  RunPlan,
  SkipRulePlan,
  SortKeyOp,
  SourcePlan,
  Step,
  TargetPlan,
  Template,
  UpdatePlan,
} from '../plan/types.js';
import { type EnvSource, interpolateEnv } from './env.js';
import { checkJsonPath } from './jsonpath.js';
import type { LoadedSpec, PathSegment } from './load.js';
import { parseRef, parseTemplate, RefSyntaxError, templateRefs } from './refs.js';
import type { ConditionSpec, FixSpec, SortKeyConditionSpec } from './types.js';
import { validateSpec } from './validate.js';

export interface CompileOptions {
  /** Where `${VAR}` values come from; defaults to process.env. */
  readonly env?: EnvSource;
  /** Skips environment interpolation (validate/explain without the variables set). */
  readonly skipEnv?: boolean;
  /**
   * Runs the fix against this target instead of the spec's (fix tests on embedded engines);
   * the spec's target section is then not interpolated, so its variables need not be set.
   */
  readonly target?: TargetPlan;
}

/** Engine-reserved reasons, so a user rule cannot be confused with them in a summary. */
export const RESERVED_REASONS: ReadonlySet<string> = new Set(ENGINE_REASONS);

const NOW = 'now';
const SQL_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEFAULT_PAGE = { sqlite: 1000, dynamodb: 100 } as const;

class Collector {
  readonly diags: Diagnostic[] = [];
  constructor(private readonly spec: LoadedSpec) {}
  error(code: string, path: readonly PathSegment[], message: string, key = false): void {
    const { line, col } = this.spec.locate(path, { key });
    const pointer = `/${path.map(String).join('/')}`;
    this.diags.push({ code, severity: 'error', message: `${pointer}: ${message}`, path: pointer, file: this.spec.file, line, col });
  }
}

/** Validates and compiles; throws a DatafixError carrying every diagnostic found. */
export function compileSpec(spec: LoadedSpec, options: CompileOptions = {}): FixPlan {
  const schemaDiags = validateSpec(spec);
  if (schemaDiags.length > 0) {
    throw new DatafixError('spec', schemaDiags[0]?.code ?? 'DF100', `${spec.file}: invalid spec`, schemaDiags);
  }
  const c = new Collector(spec);
  const fix = spec.data as FixSpec;
  const env = options.env ?? process.env;

  let envMissing = false;
  const interp = (value: unknown, path: PathSegment[]): unknown => {
    if (options.skipEnv) return value;
    if (typeof value === 'string') {
      const r = interpolateEnv(value, env);
      if (r.missing.length > 0) {
        envMissing = true;
        for (const { name, empty } of r.missing) {
          c.error(
            'DF301',
            path,
            empty
              ? `environment variable ${name} is set but empty; give it a value (\`${name}=\` with nothing after it counts as no value), or a default with \${${name}:-value}`
              : `environment variable ${name} is not set; set it, give a default with \${${name}:-value}, or load it with --env NAME`,
          );
        }
      }
      return r.value;
    }
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = interp(v, [...path, k]);
      return out;
    }
    return value;
  };

  // --- target -------------------------------------------------------------------------------
  const backend: 'sqlite' | 'dynamodb' = fix.target.sqlite ? 'sqlite' : 'dynamodb';
  let target: TargetPlan;
  if (options.target) {
    if (options.target.backend !== backend) {
      c.error('DF205', ['target'], `this fix targets ${backend}; it cannot run on ${options.target.backend}`, true);
    }
    target = options.target;
  } else if (backend === 'sqlite') {
    const t = interp(fix.target.sqlite, ['target', 'sqlite']) as { path: string; busyTimeoutMs?: unknown };
    const busy = toCount(t.busyTimeoutMs ?? 5000, ['target', 'sqlite', 'busyTimeoutMs'], c, 0, options.skipEnv);
    let path = t.path;
    if (path === '~' || path.startsWith('~/')) path = homedir() + path.slice(1);
    if (!options.skipEnv && !envMissing && path.trim() === '') c.error('DF302', ['target', 'sqlite', 'path'], 'database path is empty');
    target = { backend, path: path && !options.skipEnv ? resolve(path) : path, busyTimeoutMs: busy ?? 5000 };
  } else {
    const t = interp(fix.target.dynamodb, ['target', 'dynamodb']) as { table: string; region?: string; endpoint?: string };
    if (!options.skipEnv && !envMissing && !t.table) c.error('DF302', ['target', 'dynamodb', 'table'], 'table name is empty');
    const endpoint = t.endpoint?.trim() ? t.endpoint.trim() : undefined;
    if (endpoint && !options.skipEnv && !isHttpUrl(endpoint)) {
      // Only a bare host[:port] is shown: anything with a scheme, a path or a user part may hide a
      // password where no parser finds it (`http://admin:pw`, `admin:pw%40host`).
      const shown = /^[A-Za-z0-9.-]+(?::[0-9]+)?$/.test(endpoint)
        ? `, got \`${endpoint}\``
        : ' (the value is not shown: it may hold credentials)';
      c.error('DF302', ['target', 'dynamodb', 'endpoint'], `endpoint must be an http(s) URL such as http://localhost:8000${shown}`);
    }
    target = { backend, table: t.table, region: t.region?.trim() || 'us-east-1', ...(endpoint ? { endpoint } : {}) };
  }

  // --- names --------------------------------------------------------------------------------
  const alias = fix.source.as;
  const lookupNames = Object.keys(fix.lookups ?? {});
  const extractNames = Object.keys(fix.extract ?? {});
  const roots = new Map<string, 'source' | 'lookup' | 'extract' | 'now'>([[NOW, 'now']]);
  if (alias === NOW) c.error('DF209', ['source', 'as'], '`now` is reserved for the run timestamp; choose another name');
  roots.set(alias, 'source');
  for (const [kind, names, section] of [
    ['lookup', lookupNames, 'lookups'],
    ['extract', extractNames, 'extract'],
  ] as const) {
    for (const n of names) {
      if (roots.has(n)) c.error('DF209', [section, n], `name \`${n}\` is already used by the ${roots.get(n)}; names must be unique`, true);
      else roots.set(n, kind);
    }
  }

  const ref = (text: unknown, path: PathSegment[]): Ref | undefined => {
    try {
      return parseRef(String(text));
    } catch (err) {
      c.error('DF208', path, (err as Error).message);
      return undefined;
    }
  };
  const template = (value: unknown, path: PathSegment[]): Template | undefined => {
    try {
      return parseTemplate(value);
    } catch (err) {
      if (err instanceof RefSyntaxError) {
        c.error('DF207', path, err.message);
        return undefined;
      }
      throw err;
    }
  };
  /** Checks a context reference: its root must exist and be allowed at this point. */
  const checkRoot = (r: Ref, path: PathSegment[], allowed: (root: string) => string | undefined): void => {
    if (!roots.has(r.root)) {
      const known = [...roots.keys()].join(', ');
      c.error('DF201', path, `\`${r.text}\` names \`${r.root}\`, which is not defined; known names: ${known}`);
      return;
    }
    if (r.root === NOW && r.path.length > 0) c.error('DF201', path, '`now` is a timestamp and has no fields');
    const why = allowed(r.root);
    if (why) c.error('DF202', path, why);
  };

  // --- source -------------------------------------------------------------------------------
  const source = compileSource(fix, backend, c, ref);

  // --- lookups ------------------------------------------------------------------------------
  const lookups: LookupPlan[] = [];
  lookupNames.forEach((name, index) => {
    const spec = fix.lookups?.[name];
    if (!spec) return;
    const key: [string, Template][] = [];
    const needs = new Set<string>();
    for (const [k, v] of Object.entries(spec.get)) {
      const p: PathSegment[] = ['lookups', name, 'get', k];
      const t = template(v, p);
      if (!t) continue;
      for (const r of templateRefs(t)) {
        checkRoot(r, p, (root) => {
          if (root === name) return `lookup \`${name}\` cannot use itself`;
          const li = lookupNames.indexOf(root);
          if (li > index)
            return `lookup \`${name}\` uses lookup \`${root}\`, which is declared after it; move \`${root}\` above \`${name}\``;
          if (roots.get(root) === 'extract')
            return `lookup \`${name}\` cannot use extract \`${root}\`; lookups may use the source, earlier lookups and now`;
          return undefined;
        });
        needs.add(r.root);
      }
      key.push([k, t]);
    }
    if (backend === 'sqlite') {
      if (!spec.table) c.error('DF205', ['lookups', name], 'a SQLite lookup needs `table`', true);
      else if (!SQL_IDENT.test(spec.table)) c.error('DF205', ['lookups', name, 'table'], 'table must be a plain identifier');
      for (const k of Object.keys(spec.get)) {
        if (!SQL_IDENT.test(k)) c.error('DF205', ['lookups', name, 'get', k], `column \`${k}\` must be a plain identifier`, true);
      }
    }
    lookups.push({
      name,
      ...(spec.table ? { table: spec.table } : {}),
      key,
      consistentRead: spec.consistentRead ?? false,
      needs: [...needs].filter((n) => n !== NOW),
    });
  });

  // --- extracts -----------------------------------------------------------------------------
  const extracts: ExtractPlan[] = [];
  extractNames.forEach((name, index) => {
    const spec = fix.extract?.[name];
    if (!spec) return;
    const p: PathSegment[] = ['extract', name];
    const from = ref(spec.from, [...p, 'from']);
    if (from) {
      checkRoot(from, [...p, 'from'], (root) => {
        if (root === name) return `extract \`${name}\` cannot read itself`;
        if (root === NOW) return 'extract from `now` is not useful; reference now directly';
        const ei = extractNames.indexOf(root);
        if (ei > index) return `extract \`${name}\` reads extract \`${root}\`, which is declared after it; move \`${root}\` above`;
        return undefined;
      });
    }
    const paths = spec.first ?? (spec.path !== undefined ? [spec.path] : []);
    if (paths.length === 0) c.error('DF203', p, 'an extract needs `path` or `first`', true);
    if (spec.first && spec.path !== undefined) c.error('DF203', p, 'use either `path` or `first`, not both', true);
    paths.forEach((jp, i) => {
      const problem = checkJsonPath(jp);
      if (problem) c.error(problem.code, spec.first ? [...p, 'first', i] : [...p, 'path'], problem.message);
    });
    if (from) {
      extracts.push({ name, from, ...(spec.parse ? { parse: spec.parse } : {}), paths, needs: [from.root] });
    }
  });

  // --- conditions & skip --------------------------------------------------------------------
  const contextCondition = (cond: ConditionSpec, path: PathSegment[]): Condition | undefined =>
    compileCondition(cond, path, c, ref, (r, p) => checkRoot(r, p, () => undefined));

  const skip: SkipRulePlan[] = [];
  (fix.skip ?? []).forEach((rule, i) => {
    const p: PathSegment[] = ['skip', i];
    if (RESERVED_REASONS.has(rule.reason)) {
      c.error('DF210', [...p, 'reason'], `reason \`${rule.reason}\` is reserved for the engine; choose another name`);
    }
    if (fix.skip?.findIndex((r) => r.reason === rule.reason) !== i) {
      c.error('DF210', [...p, 'reason'], `reason \`${rule.reason}\` is used by an earlier rule; reasons must be unique`);
    }
    const when = contextCondition(rule.when, [...p, 'when']);
    if (when) skip.push({ reason: rule.reason, when, needs: conditionRoots(when).filter((n) => n !== NOW) });
  });

  // --- update -------------------------------------------------------------------------------
  const update = compileUpdate(fix, backend, source, lookups, c, template, checkRoot);

  // --- run ----------------------------------------------------------------------------------
  const runSpec = (interp(fix.run ?? {}, ['run']) ?? {}) as Record<string, unknown>;
  const readerPageSize = fix.source.pageSize ?? fix.source.query?.pageSize ?? fix.source.scan?.pageSize;
  const run: RunPlan = {
    concurrency: toCount(runSpec.concurrency ?? 10, ['run', 'concurrency'], c, 1, options.skipEnv) ?? 10,
    batchSize: toCount(runSpec.batchSize ?? 1000, ['run', 'batchSize'], c, 1, options.skipEnv) ?? 1000,
    pageSize:
      readerPageSize ??
      toCount(runSpec.pageSize ?? DEFAULT_PAGE[backend], ['run', 'pageSize'], c, 1, options.skipEnv) ??
      DEFAULT_PAGE[backend],
    ...(runSpec.limit !== undefined ? { limit: toCount(runSpec.limit, ['run', 'limit'], c, 1, options.skipEnv) ?? 0 } : {}),
  };

  // --- unused names -------------------------------------------------------------------------
  const used = new Set<string>([
    ...lookups.flatMap((l) => l.needs),
    ...extracts.flatMap((e) => e.needs),
    ...skip.flatMap((s) => s.needs),
    ...update.needs,
  ]);
  for (const n of [...lookupNames, ...extractNames]) {
    if (!used.has(n)) {
      const section = lookupNames.includes(n) ? 'lookups' : 'extract';
      c.error('DF212', [section, n], `\`${n}\` is never used; reference it in a skip rule or the update, or remove it`, true);
    }
  }

  if (c.diags.length > 0) {
    throw new DatafixError('spec', c.diags[0]?.code ?? 'DF200', `${spec.file}: invalid spec`, c.diags);
  }

  return {
    planVersion: 1,
    fix: fix.name,
    ...(fix.description ? { description: fix.description } : {}),
    specChecksum: spec.checksum,
    target,
    source,
    lookups,
    extracts,
    skip,
    steps: orderSteps(lookups, extracts, skip, update.needs, update.plan),
    update: update.plan,
    run,
  };
}

function toCount(value: unknown, path: PathSegment[], c: Collector, min: number, skipEnv: boolean | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (skipEnv && typeof value === 'string' && value.includes('${')) return undefined;
  const text = String(value).trim();
  if (/^[0-9]+$/.test(text) && Number(text) >= min && Number.isSafeInteger(Number(text))) return Number(text);
  c.error('DF302', path, `\`${text}\` (from the environment) is not a whole number ≥ ${min}`);
  return undefined;
}

function compileSource(
  fix: FixSpec,
  backend: 'sqlite' | 'dynamodb',
  c: Collector,
  ref: (text: unknown, path: PathSegment[]) => Ref | undefined,
): SourcePlan {
  const s = fix.source;
  const readers = (['table', 'query', 'scan'] as const).filter((k) => s[k] !== undefined);
  if (readers.length !== 1) {
    c.error(
      'DF205',
      ['source'],
      `source needs exactly one reader: \`table\` (SQLite), \`query\` or \`scan\` (DynamoDB); found ${readers.length ? readers.join(', ') : 'none'}`,
    );
  }
  const fieldCondition = (cond: ConditionSpec | undefined, path: PathSegment[]) =>
    cond ? compileCondition(cond, path, c, ref, () => undefined) : undefined;

  if (backend === 'sqlite') {
    if (s.query || s.scan)
      c.error(
        'DF205',
        ['source', s.query ? 'query' : 'scan'],
        'a SQLite target reads with `table` and `where`; `query` and `scan` are DynamoDB readers',
        true,
      );
    const where = fieldCondition(s.where, ['source', 'where']);
    if (where) {
      for (const r of conditionRefs(where)) {
        if (r.path.length > 0 || !SQL_IDENT.test(r.root)) {
          c.error('DF205', ['source', 'where'], `\`${r.text}\` is not a column name; \`where\` takes plain column names`);
        }
      }
    }
    return { kind: 'table', as: s.as, table: s.table ?? '', ...(where ? { where } : {}) };
  }
  if (s.table !== undefined || s.where !== undefined) {
    c.error(
      'DF205',
      ['source', s.table !== undefined ? 'table' : 'where'],
      'a DynamoDB target reads with `query` or `scan`; `table`/`where` are SQLite readers',
      true,
    );
  }
  if (s.scan) {
    return {
      kind: 'scan',
      as: s.as,
      ...(s.scan.index ? { index: s.scan.index } : {}),
      ...(s.scan.filter ? { filter: fieldCondition(s.scan.filter, ['source', 'scan', 'filter']) } : {}),
      segments: s.scan.segments ?? 1,
      consistentRead: s.scan.consistentRead ?? false,
    };
  }
  const q = s.query ?? { key: {} };
  let partitionKey: { name: string; value: string | number } | undefined;
  let sortKey: { name: string; op: SortKeyOp; values: (string | number)[] } | undefined;
  for (const [name, v] of Object.entries(q.key)) {
    const problem = literalValueProblem(v);
    if (problem) c.error('DF214', ['source', 'query', 'key', name], problem);
    if (typeof v === 'string' || typeof v === 'number') {
      if (partitionKey) {
        if (sortKey) c.error('DF206', ['source', 'query', 'key', name], 'a query key has one partition key and at most one sort key', true);
        else sortKey = { name, op: 'equals', values: [v] };
      } else partitionKey = { name, value: v };
    } else {
      if (sortKey) c.error('DF206', ['source', 'query', 'key', name], 'a query key has at most one sort-key condition', true);
      const [op, arg] = Object.entries(v as SortKeyConditionSpec)[0] ?? [];
      sortKey = { name, op: op as SortKeyOp, values: Array.isArray(arg) ? arg : [arg as string | number] };
    }
  }
  if (!partitionKey) {
    c.error('DF206', ['source', 'query', 'key'], 'a query needs the partition key as `name: value`');
    partitionKey = { name: '', value: '' };
  }
  return {
    kind: 'query',
    as: s.as,
    ...(q.index ? { index: q.index } : {}),
    partitionKey,
    ...(sortKey ? { sortKey } : {}),
    newestFirst: q.newestFirst ?? false,
    ...(q.filter ? { filter: fieldCondition(q.filter, ['source', 'query', 'filter']) } : {}),
    consistentRead: q.consistentRead ?? false,
  };
}

/**
 * Why a value a condition or query key compares with would silently mean something else than it
 * seems, or undefined. Values there are compared as written, maps and lists deeply: a
 * `{{ template }}` anywhere in one is not rendered and a `${VAR}` is not expanded (only the
 * target and run settings read the environment).
 */
function literalValueProblem(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  for (let seen = 0; stack.length > 0 && seen < 10_000; seen++) {
    const v = stack.pop();
    if (v !== null && typeof v === 'object') {
      stack.push(...(Array.isArray(v) ? v : Object.values(v)));
      continue;
    }
    if (typeof v !== 'string') continue;
    if (/\{\{[\s\S]*\}\}/.test(v)) {
      return `\`${v}\` would be compared as this very text: templates are not rendered in conditions and query keys. Write the value itself`;
    }
    if (/\$\{[^}]*\}/.test(v)) {
      return `\`${v}\` would be compared as this very text: \`\${VAR}\` is expanded only in the target and run settings. Write the value itself`;
    }
  }
  return undefined;
}

/**
 * Whether `text` is an http(s) URL as the SDK will parse it (WHATWG URL). A value that only looks
 * like one (`http://user:pw/x@host`, a bad port) would be printed wherever the target is shown,
 * where no URL parser could find and strip its credentials.
 */
function isHttpUrl(text: string): boolean {
  if (!/^https?:\/\/[^\s]+$/i.test(text)) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function compileCondition(
  cond: ConditionSpec,
  path: PathSegment[],
  c: Collector,
  ref: (text: unknown, path: PathSegment[]) => Ref | undefined,
  check: (r: Ref, path: PathSegment[]) => void,
): Condition | undefined {
  const [op, arg] = Object.entries(cond)[0] ?? [];
  const p = [...path, op ?? ''];
  switch (op) {
    case 'exists':
    case 'missing':
    case 'isNull':
    case 'notNull': {
      const list = Array.isArray(arg) ? arg : [arg];
      const refs = list.map((t, i) => ref(t, Array.isArray(arg) ? [...p, i] : p));
      refs.forEach((r, i) => {
        if (r) check(r, Array.isArray(arg) ? [...p, i] : p);
      });
      if (refs.some((r) => !r)) return undefined;
      return { op, refs: refs as Ref[] };
    }
    case 'equals': {
      const pairs: { ref: Ref; value: unknown }[] = [];
      for (const [k, v] of Object.entries(arg as Record<string, unknown>)) {
        const r = ref(k, [...p, k]);
        if (!r) continue;
        check(r, [...p, k]);
        const problem = literalValueProblem(v);
        if (problem) c.error('DF214', [...p, k], problem);
        pairs.push({ ref: r, value: v });
      }
      return { op, pairs };
    }
    case 'all':
    case 'any': {
      const of = (arg as ConditionSpec[]).map((sub, i) => compileCondition(sub, [...p, i], c, ref, check));
      return of.every(Boolean) ? { op, of: of as Condition[] } : undefined;
    }
    case 'not': {
      const of = compileCondition(arg as ConditionSpec, p, c, ref, check);
      return of ? { op, of } : undefined;
    }
    default:
      c.error('DF106', path, 'a condition needs exactly one of: exists, missing, isNull, notNull, equals, all, any, not');
      return undefined;
  }
}

function conditionRoots(cond: Condition): string[] {
  return [...new Set(conditionRefs(cond).map((r) => r.root))];
}

function compileUpdate(
  fix: FixSpec,
  backend: 'sqlite' | 'dynamodb',
  source: SourcePlan,
  lookups: readonly LookupPlan[],
  c: Collector,
  template: (value: unknown, path: PathSegment[]) => Template | undefined,
  checkRoot: (r: Ref, path: PathSegment[], allowed: (root: string) => string | undefined) => void,
): { plan: UpdatePlan; needs: string[] } {
  const u = fix.update;
  const needs = new Set<string>();
  const compileMap = (map: Record<string, unknown>, section: string): [string, Template][] => {
    const out: [string, Template][] = [];
    for (const [field, v] of Object.entries(map)) {
      const p: PathSegment[] = ['update', section, field];
      if (backend === 'sqlite' && !SQL_IDENT.test(field)) {
        c.error('DF205', p, `column \`${field}\` must be a plain identifier`, true);
      }
      const t = template(v, p);
      if (!t) continue;
      for (const r of templateRefs(t)) {
        checkRoot(r, p, () => undefined);
        needs.add(r.root);
      }
      out.push([field, t]);
    }
    return out;
  };
  const table = backend === 'sqlite' ? (u.table ?? (source.kind === 'table' ? source.table : undefined)) : undefined;
  if (backend === 'dynamodb' && u.table !== undefined) {
    c.error('DF205', ['update', 'table'], 'a DynamoDB update always writes the target table; remove `table`', true);
  }
  if (table && !SQL_IDENT.test(table)) c.error('DF205', ['update', 'table'], 'table must be a plain identifier');
  const key = compileMap(u.key, 'key');
  const setEntries = compileMap(u.set, 'set');
  const touchEntries = compileMap(u.touch ?? {}, 'touch');
  const overwriteList = Array.isArray(u.overwrite) ? u.overwrite : undefined;
  overwriteList?.forEach((f, i) => {
    if (!Object.hasOwn(u.set, f)) c.error('DF211', ['update', 'overwrite', i], `\`${f}\` is not a field under update.set`);
  });
  for (const f of Object.keys(u.touch ?? {})) {
    if (Object.hasOwn(u.set, f)) c.error('DF213', ['update', 'touch', f], `\`${f}\` is under both set and touch; keep it in one`, true);
  }
  // A literal null would write NULL (SQL NULL, a DynamoDB NULL attribute), which a dry run shows
  // much like "absent" and a fill-only field already counts as absent: refused, not guessed at.
  for (const [section, map] of [
    ['set', u.set],
    ['touch', u.touch ?? {}],
  ] as const) {
    for (const [f, v] of Object.entries(map)) {
      if (v === null) {
        c.error(
          'DF215',
          ['update', section, f],
          `\`${f}: null\` would write NULL; datafix does not write NULL or remove fields. Leave the field out, or write a value`,
        );
      }
    }
  }
  for (const f of [...Object.keys(u.set), ...Object.keys(u.touch ?? {})]) {
    if (Object.hasOwn(u.key, f)) c.error('DF213', ['update', 'set', f], `\`${f}\` is part of the key and cannot be written`, true);
  }

  // The record's current values are already in the context when the update key is exactly the
  // key of the source record (or of a lookup) on the same table; otherwise the engine fetches it.
  const sameRecord = (root: string, rootTable: string | undefined): boolean =>
    rootTable === table &&
    key.length > 0 &&
    key.every(([k, t]) => t.kind === 'ref' && t.ref.root === root && t.ref.path.length === 1 && t.ref.path[0] === k);
  const sourceTable = source.kind === 'table' ? source.table : undefined;
  let before: UpdatePlan['before'] = { kind: 'fetch' };
  if (sameRecord(source.as, sourceTable)) before = { kind: 'context', root: source.as };
  else {
    const l = lookups.find((l) => sameRecord(l.name, l.table));
    if (l) before = { kind: 'context', root: l.name };
  }

  return {
    plan: {
      ...(table !== undefined ? { table } : {}),
      key,
      set: setEntries.map(([field, t]) => ({
        field,
        template: t,
        overwrite: u.overwrite === true || (overwriteList?.includes(field) ?? false),
      })),
      touch: touchEntries.map(([field, t]) => ({ field, template: t })),
      before,
    },
    needs: [...needs].filter((n) => n !== NOW),
  };
}

/**
 * Orders the per-page steps: skip rules keep their written order; before each rule come the
 * lookups and extracts it needs (and theirs), so records a cheap rule skips never cost a lookup.
 */
function orderSteps(
  lookups: readonly LookupPlan[],
  extracts: readonly ExtractPlan[],
  skip: readonly SkipRulePlan[],
  updateNeeds: readonly string[],
  update: UpdatePlan,
): Step[] {
  const steps: Step[] = [];
  const done = new Set<string>();
  const ensure = (name: string): void => {
    if (done.has(name)) return;
    done.add(name);
    const l = lookups.find((x) => x.name === name);
    if (l) {
      l.needs.forEach(ensure);
      steps.push({ kind: 'lookup', name });
      return;
    }
    const e = extracts.find((x) => x.name === name);
    if (e) {
      e.needs.forEach(ensure);
      steps.push({ kind: 'extract', name });
    }
  };
  skip.forEach((rule, index) => {
    rule.needs.forEach(ensure);
    steps.push({ kind: 'skip', index });
  });
  updateNeeds.forEach(ensure);
  if (update.before.kind === 'fetch') steps.push({ kind: 'fetchTarget' });
  return steps;
}
