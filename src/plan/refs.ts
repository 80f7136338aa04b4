/** Every reference a compiled plan reads, with where in the spec it is written. */
import { conditionRefs } from './conditions.js';
import type { ExprPlan, FixPlan, Ref, Template } from './types.js';

/** A reference and the spec path of the value holding it (`['skip', 0, 'when']`). */
export interface PlacedRef {
  readonly ref: Ref;
  readonly at: readonly (string | number)[];
}

/**
 * The references of lookup keys, extracts, skip and fail rules, the update key and every `set` and
 * `touch` template, in spec order. The source's `where`/`filter` is not included: its references
 * name columns or attributes directly, not records of the run.
 */
export function planRefs(plan: Pick<FixPlan, 'lookups' | 'extracts' | 'skip' | 'fail' | 'update'>): PlacedRef[] {
  const out: PlacedRef[] = [];
  // An expression's reads, or its roots alone (the whole value) for a plan saved without them.
  const expr = (e: ExprPlan, at: readonly (string | number)[]): void => {
    for (const ref of e.reads ?? e.roots.map((root) => ({ root, path: [], text: root }))) out.push({ ref, at });
  };
  const template = (t: Template, at: readonly (string | number)[]): void => {
    switch (t.kind) {
      case 'ref':
        out.push({ ref: t.ref, at });
        return;
      case 'string':
        for (const p of t.parts) if (typeof p !== 'string') out.push({ ref: p, at });
        return;
      case 'expr':
        expr(t.expr, at);
        return;
      case 'text':
        for (const p of t.parts) {
          if (typeof p === 'string') continue;
          if ('source' in p) expr(p, at);
          else out.push({ ref: p, at });
        }
        return;
      case 'object':
        for (const [, v] of t.entries) template(v, at);
        return;
      case 'array':
        for (const v of t.items) template(v, at);
        return;
      default:
        return;
    }
  };
  for (const l of plan.lookups) {
    if (l.kind !== 'list') for (const [, t] of l.key) template(t, ['lookups', l.name, 'get']);
    else {
      const at = ['lookups', l.name, l.by];
      for (const [, t] of l.match) template(t, at);
      for (const t of l.sortKey?.values ?? []) template(t, at);
    }
  }
  for (const e of plan.extracts) {
    out.push({ ref: e.from, at: ['extract', e.name, 'from'] });
    if (e.then) expr(e.then, ['extract', e.name, 'then']);
  }
  for (const [i, rule] of plan.skip.entries()) for (const ref of conditionRefs(rule.when)) out.push({ ref, at: ['skip', i, 'when'] });
  for (const [i, rule] of (plan.fail ?? []).entries())
    for (const ref of conditionRefs(rule.when)) out.push({ ref, at: ['fail', i, 'when'] });
  for (const [, t] of plan.update.key) template(t, ['update', 'key']);
  for (const s of plan.update.set) template(s.template, ['update', 'set', s.field]);
  for (const s of plan.update.touch) template(s.template, ['update', 'touch', s.field]);
  return out;
}

/**
 * The `[table, column]` a reference reads on a SQLite target: the first segment of a reference to
 * the source row (`row.payload.x` reads column `payload` of the source table) or to a lookup's
 * row; undefined for the whole row, for extracts and `now`, and on DynamoDB (items have no schema).
 */
export function columnReadBy(plan: FixPlan, ref: Ref): readonly [string, string] | undefined {
  if (plan.target.backend !== 'sqlite') return undefined;
  const lookup = plan.lookups.find((l) => l.name === ref.root);
  // A lookup of several rows is a list: `comments[0].body` reads column `body` of one row.
  if (lookup?.kind === 'list') {
    const column = ref.path[1];
    return lookup.table !== undefined && column !== undefined && ref.indexes?.includes(0) && !ref.indexes.includes(1)
      ? [lookup.table, column]
      : undefined;
  }
  const [column] = ref.path;
  if (column === undefined || ref.indexes?.includes(0)) return undefined;
  if (plan.source.kind === 'table' && ref.root === plan.source.as) return [plan.source.table, column];
  return lookup?.table !== undefined ? [lookup.table, column] : undefined;
}

/**
 * The `[table, column]` a reference names when it is a whole column of a row read from a SQLite
 * table (`row.email` for the source `row`, `cust.country` for a lookup of table `customers`), so
 * it compares as that column does; undefined for anything else (a path inside a value, an
 * extract, a DynamoDB item).
 */
export function columnOfRef(plan: FixPlan, ref: Ref): readonly [string, string] | undefined {
  const list = plan.lookups.some((l) => l.kind === 'list' && l.name === ref.root);
  return ref.path.length === (list ? 2 : 1) ? columnReadBy(plan, ref) : undefined;
}
