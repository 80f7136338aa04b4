/**
 * `datafix explain`: a fix in plain language for a pull request. It is rendered from the
 * compiled plan (so it says what the engine will actually do) with the spec's own text for
 * templates and environment references (so it shows what a reviewer sees in the file).
 * The output is deterministic: same spec, same text.
 */
import { redactText } from './adapters/redact.js';
import type { FixSpec } from './language/types.js';
import type { Condition, FixPlan, ListLookupPlan, LookupPlan, Ref, SortKeyOp, SourcePlan, Template, ValueTestOp } from './plan/types.js';

export type ExplainFormat = 'markdown' | 'text';

const code = (s: string, md: boolean) => (md ? `\`${s}\`` : s);

function templateText(t: Template): string {
  switch (t.kind) {
    case 'literal':
      return typeof t.value === 'string' ? t.value : JSON.stringify(t.value);
    case 'ref':
      return `{{ ${t.ref.text} }}`;
    case 'string':
      return t.parts.map((p) => (typeof p === 'string' ? p : `{{ ${p.text} }}`)).join('');
    case 'expr':
      return `{{ ${t.expr.source} }}`;
    case 'text':
      return t.parts.map((p) => (typeof p === 'string' ? p : `{{ ${'source' in p ? p.source : p.text} }}`)).join('');
    case 'object':
      return `{ ${t.entries.map(([k, v]) => `${k}: ${templateText(v)}`).join(', ')} }`;
    case 'array':
      return `[${t.items.map(templateText).join(', ')}]`;
  }
}

function refList(refs: readonly Ref[], md: boolean, one: string, many: string): string {
  const names = refs.map((r) => code(r.text, md));
  if (names.length === 1) return `${names[0]} ${one}`;
  const all = names.length === 2 ? many.replace(/\ball\b/, 'both') : many;
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} ${all}`;
}

export function describeCondition(c: Condition, md: boolean): string {
  switch (c.op) {
    case 'exists':
      return refList(c.refs, md, 'has a value', 'all have a value');
    case 'missing':
      return refList(c.refs, md, 'is missing (absent, null or empty)', 'are all missing (absent, null or empty)');
    case 'isNull':
      return refList(c.refs, md, 'is absent or null', 'are all absent or null');
    case 'notNull':
      return refList(c.refs, md, 'is not null', 'are all not null');
    case 'equals':
      return c.pairs.map((p) => `${code(p.ref.text, md)} equals ${code(JSON.stringify(p.value) ?? 'null', md)}`).join(' and ');
    case 'all':
      return c.of.map((x) => `(${describeCondition(x, md)})`).join(' and ');
    case 'any':
      return c.of.map((x) => `(${describeCondition(x, md)})`).join(' or ');
    case 'not':
      return `not (${describeCondition(c.of, md)})`;
    case 'expr':
      return `the expression ${code(c.expr.source, md)} is true`;
    default: {
      const op = c.op;
      return c.tests
        .map(
          (t) =>
            `${code(t.ref.text, md)} ${VALUE_TEST_WORDS[op](t.values.map((v) => code(op === 'type' ? String(v) : JSON.stringify(v), md)))}`,
        )
        .join(' and ');
    }
  }
}

/** How explain reads each comparison, given its operands already formatted. */
const VALUE_TEST_WORDS: Readonly<Record<ValueTestOp, (v: readonly string[]) => string>> = {
  lt: (v) => `is less than ${v[0]}`,
  lte: (v) => `is at most ${v[0]}`,
  gt: (v) => `is greater than ${v[0]}`,
  gte: (v) => `is at least ${v[0]}`,
  between: (v) => `is between ${v[0]} and ${v[1]} (inclusive)`,
  beginsWith: (v) => `begins with ${v[0]}`,
  contains: (v) => `contains ${v[0]}`,
  in: (v) => `is one of ${v.join(', ')}`,
  type: (v) => `is of type ${v[0]}`,
};

/** `SK begins with COMMENT#`: a sort-key condition with its values as written. */
function sortKeyText(name: string, op: SortKeyOp, values: readonly string[], md: boolean): string {
  const verb =
    op === 'beginsWith' ? 'begins with' : op === 'between' ? 'is between' : { equals: '=', lt: '<', lte: '≤', gt: '>', gte: '≥' }[op];
  return `${code(name, md)} ${verb} ${values.map((v) => code(v, md)).join(' and ')}`;
}

/** What a lookup of several records selects: `post_id = {{ row.id }}`, its sort-key condition and `where`. */
function listSelection(l: ListLookupPlan, md: boolean): string {
  const parts = l.match.map(([k, t]) => `${code(k, md)} = ${code(templateText(t), md)}`);
  if (l.sortKey) parts.push(sortKeyText(l.sortKey.name, l.sortKey.op, l.sortKey.values.map(templateText), md));
  if (l.where) parts.push(describeCondition(l.where, md));
  return parts.join(' and ') || 'every record';
}

/** One entry of the Lookups section. */
function describeLookup(l: LookupPlan, backend: string, md: boolean): string {
  if (l.kind === 'list') {
    const from =
      l.by === 'where'
        ? `every row of table ${code(l.table ?? '', md)} where ${listSelection(l, md)}, in primary-key order`
        : `every item of ${l.index ? `index ${code(l.index, md)} of ` : ''}${l.table ? `table ${code(l.table, md)}` : 'the target table'} where ${listSelection(l, md)}, in sort-key order`;
    const how = l.by === 'where' ? 'one query per page of records' : 'one Query per record, paged';
    return `${code(l.name, md)}: ${from}, as a list of at most ${l.max} (a record with more fails with reason ${code('lookup_over_max', md)}); ${how}${l.consistentRead ? ', strongly consistent' : ''}. An empty list when none matches or a value it needs is missing.`;
  }
  const key = l.key.map(([k, t]) => `${code(k, md)} = ${code(templateText(t), md)}`).join(', ');
  const table = l.table ? `table ${code(l.table, md)}` : 'the target table';
  const batched = backend === 'dynamodb' ? ', batched (BatchGetItem, up to 100 keys per request)' : '';
  return `${code(l.name, md)}: the record with ${key} from ${table}${l.consistentRead ? ', strongly consistent' : ''}${batched}. Missing when its key cannot be built.`;
}

function describeSource(s: SourcePlan, pageSize: number, md: boolean): string {
  switch (s.kind) {
    case 'table':
      return `Rows of table ${code(s.table, md)}${s.where ? ` where ${describeCondition(s.where, md)}` : ''}, in primary-key order, ${pageSize} per page (keyset paging). Each row is called ${code(s.as, md)}.`;
    case 'query': {
      const on = s.index ? `index ${code(s.index, md)}` : 'the table';
      const sk = s.sortKey ? ` and ${sortKeyText(s.sortKey.name, s.sortKey.op, s.sortKey.values.map(String), md)}` : '';
      return `Query ${on} where ${code(s.partitionKey.name, md)} = ${code(String(s.partitionKey.value), md)}${sk}, ${
        s.newestFirst ? 'newest first' : 'oldest first'
      }, ${pageSize} per page${s.filter ? `, keeping only items where ${describeCondition(s.filter, md)}` : ''}. Each item is called ${code(s.as, md)}.`;
    }
    case 'scan':
      return `Scan ${s.index ? `index ${code(s.index, md)}` : 'the table'}${s.segments > 1 ? ` in ${s.segments} parallel segments` : ''}, ${pageSize} per page${
        s.filter ? `, keeping only items where ${describeCondition(s.filter, md)}` : ''
      }. Each item is called ${code(s.as, md)}.`;
  }
}

function describeTarget(spec: FixSpec, md: boolean): string {
  if (spec.target.sqlite) {
    return `SQLite database ${code(spec.target.sqlite.path, md)}`;
  }
  const d = spec.target.dynamodb ?? { table: '' };
  const parts = [`DynamoDB table ${code(d.table, md)}`, `region ${code(d.region ?? 'us-east-1', md)}`];
  // Spec text, so a literal URL may hold credentials: shown without them, as everywhere else.
  if (d.endpoint !== undefined) {
    parts.push(`endpoint ${code(redactText(d.endpoint), md)}${d.endpoint.includes('${') ? ' (when empty: the AWS default)' : ''}`);
  }
  return parts.join(', ');
}

/**
 * Mermaid label text: quoted, with each character Mermaid or the HTML it renders to would read as
 * syntax written as an entity code: `#` (which starts one), `&`, `"`, `<`, `>` and the backtick
 * (which would start a Markdown label). Checked with Mermaid 12.3's parser.
 */
function mermaidLabel(text: string): string {
  const escaped = text
    .replace(/#/g, '#35;')
    .replace(/&/g, '#38;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/`/g, '#96;');
  return `"${escaped}"`;
}

function sourceLabel(s: SourcePlan): string {
  switch (s.kind) {
    case 'table':
      return `Read rows of table ${s.table}${s.where ? ' that match where' : ''}, as ${s.as}`;
    case 'query':
      return `Query ${s.index ? `index ${s.index}` : 'the table'} where ${s.partitionKey.name} = ${String(s.partitionKey.value)}, as ${s.as}`;
    case 'scan':
      return `Scan ${s.index ? `index ${s.index}` : 'the table'}, as ${s.as}`;
  }
}

/**
 * The fix's path as a Mermaid flowchart (GitHub renders a \`\`\`mermaid block): the source, then
 * each step in the order the engine runs it (\`plan.steps\`: a skip rule runs as soon as what it
 * reads is known, so rules can come between lookups), each skip rule branching off to its
 * reason, and the write.
 */
function pathDiagram(plan: FixPlan): string[] {
  const lines = ['flowchart TD', `  source[/${mermaidLabel(sourceLabel(plan.source))}/]`];
  const edges: string[] = [];
  let previous = 'source';
  // From a skip rule the path goes on only for records it does not skip.
  const onward = (from: string, to: string) => {
    const afterRule = plan.steps[Number(from.slice('step'.length)) - 1]?.kind === 'skip';
    edges.push(from.startsWith('step') && afterRule ? `  ${from} -- no --> ${to}` : `  ${from} --> ${to}`);
  };
  plan.steps.forEach((step, i) => {
    const id = `step${i + 1}`;
    if (step.kind === 'lookup') {
      const l = plan.lookups.find((x) => x.name === step.name);
      const label =
        l?.kind === 'list'
          ? `every record${l.table ? ` of ${l.table}` : ''} where ${listSelection(l, false)} (max ${l.max})`
          : `${(l?.key ?? []).map(([k, t]) => `${k} = ${templateText(t)}`).join(', ')}${l?.table ? ` in ${l.table}` : ''}`;
      lines.push(`  ${id}[${mermaidLabel(`Lookup ${step.name}: ${label}`)}]`);
    } else if (step.kind === 'extract') {
      const e = plan.extracts.find((x) => x.name === step.name);
      lines.push(`  ${id}[${mermaidLabel(`Extract ${step.name} from ${e?.from.text ?? ''}${e?.parse === 'json' ? ' (JSON)' : ''}`)}]`);
    } else if (step.kind === 'skip' || step.kind === 'fail') {
      const reason = (step.kind === 'skip' ? plan.skip[step.index] : plan.fail?.[step.index])?.reason ?? '';
      const outcome = step.kind === 'skip' ? 'skipped' : 'failed';
      lines.push(`  ${id}{${mermaidLabel(`${reason}?`)}}`, `  ${id}skip([${mermaidLabel(`${outcome}: ${reason}`)}])`);
    } else {
      const read =
        plan.update.action === 'create'
          ? 'Read whether the record exists'
          : `Read the record to ${plan.update.action === 'delete' ? 'delete' : 'update'}`;
      lines.push(`  ${id}[${mermaidLabel(read)}]`);
    }
    onward(previous, id);
    if (step.kind === 'skip' || step.kind === 'fail') edges.push(`  ${id} -- yes --> ${id}skip`);
    previous = id;
  });
  const fill = plan.update.set.filter((f) => !f.overwrite).map((f) => f.field);
  const overwrite = plan.update.set.filter((f) => f.overwrite).map((f) => f.field);
  const touch = plan.update.touch.map((t) => t.field);
  const remove = plan.update.remove ?? [];
  const what = [
    fill.length ? `fill ${fill.join(', ')}` : '',
    overwrite.length ? `overwrite ${overwrite.join(', ')}` : '',
    remove.length ? `remove ${remove.join(', ')}` : '',
    touch.length ? `touch ${touch.join(', ')}` : '',
  ].filter(Boolean);
  const table = plan.update.table ?? 'the target table';
  const label =
    plan.update.action === 'delete'
      ? `Conditional delete from ${table}, only if unchanged since read`
      : plan.update.action === 'create'
        ? `Create in ${table} where absent: ${plan.update.set.map((f) => f.field).join(', ')}`
        : `Conditional update of ${table}: ${what.join('; ')}`;
  lines.push(`  write[[${mermaidLabel(label)}]]`);
  onward(previous, 'write');
  return [...lines, ...edges];
}

/** Renders the explanation. `spec` is the file as written; `plan` its compilation without env values. */
export function explain(spec: FixSpec, plan: FixPlan, format: ExplainFormat = 'markdown'): string {
  const md = format === 'markdown';
  const out: string[] = [];
  const h = (level: number, text: string) =>
    out.push(
      md ? `${'#'.repeat(level)} ${text}` : level === 1 ? `${text}\n${'='.repeat(text.length)}` : `${text}\n${'-'.repeat(text.length)}`,
      '',
    );
  const li = (text: string, n?: number): void => {
    out.push(`${n !== undefined ? `${n}.` : '-'} ${text}`);
  };

  h(1, `Fix ${code(plan.fix, md)}`);
  if (plan.description) out.push(plan.description.trim(), '');
  out.push(`**Target:** ${describeTarget(spec, md)}.`.replace(/\*\*/g, md ? '**' : ''), '');

  if (md) {
    h(2, 'Path');
    out.push('```mermaid', ...pathDiagram(plan), '```', '');
  }

  h(2, 'Records read');
  out.push(describeSource(plan.source, plan.run.pageSize, md), '');

  if (plan.lookups.length) {
    h(2, 'Lookups');
    plan.lookups.forEach((l, i) => {
      li(describeLookup(l, plan.target.backend, md), i + 1);
    });
    out.push('');
  }

  if (plan.extracts.length) {
    h(2, 'Extracted values');
    for (const e of plan.extracts) {
      const paths = e.paths.map((p) => code(p, md)).join(', then ');
      const parse =
        e.parse === 'json' ? ` parsed as JSON (a record whose text is not valid JSON fails with reason ${code('invalid_json', md)})` : '';
      const then = e.then ? `, then ${code(e.then.source, md)} with the match as ${code('value', md)} (null when nothing matched)` : '';
      li(
        `${code(e.name, md)} from ${code(e.from.text, md)}${parse}: ${e.paths.length > 1 ? 'the first non-empty match of ' : ''}${paths}${then}.`,
      );
    }
    out.push('');
  }

  h(2, 'Skip rules (the first that matches gives the reason)');
  const write = plan.update.action === 'delete' ? 'the delete' : plan.update.action === 'create' ? 'the create' : 'the update';
  if (plan.skip.length === 0) out.push(`None: every record read is considered for ${write}.`);
  plan.skip.forEach((r, i) => {
    li(`${code(r.reason, md)} when ${describeCondition(r.when, md)}`, i + 1);
  });
  out.push('');

  if (plan.fail?.length) {
    h(2, 'Fail rules (after the skip rules; the first that matches fails the record, and the run exits 1)');
    plan.fail.forEach((r, i) => {
      li(`${code(r.reason, md)} when ${describeCondition(r.when, md)}`, i + 1);
    });
    out.push('');
  }

  h(2, 'Writes');
  const key = plan.update.key.map(([k, t]) => `${code(k, md)} = ${code(templateText(t), md)}`).join(', ');
  const where = plan.target.backend === 'sqlite' ? `table ${code(plan.update.table ?? '', md)}` : 'the target table';
  if (plan.update.action) {
    out.push(...describeWholeRecordWrite(plan, where, key, md), '');
  } else {
    describeUpdate(plan, where, key, md, out, li);
  }

  h(2, 'Run settings');
  const raw = spec.run ?? {};
  const setting = (name: keyof NonNullable<FixSpec['run']>, value: number | undefined) => {
    const written = raw[name];
    return `${name} ${value ?? '-'}${typeof written === 'string' ? ` (${code(written, md)})` : ''}`;
  };
  // Only what the backend uses: SQLite writes a batch per transaction, one at a time, so it has
  // no concurrency; DynamoDB writes item by item, so it has no batch size (docs/spec.md, run).
  if (plan.target.backend === 'dynamodb') li(`${setting('concurrency', plan.run.concurrency)} writes in flight at once`);
  li(`pageSize ${plan.run.pageSize}`);
  if (plan.target.backend === 'sqlite') li(`${setting('batchSize', plan.run.batchSize)} rows per transaction`);
  if (plan.run.limit !== undefined || raw.limit !== undefined) li(setting('limit', plan.run.limit));
  out.push('');
  return `${out.join('\n').trimEnd()}\n`;
}

/** The `delete` or `create` of whole records, for the Writes section. */
function describeWholeRecordWrite(plan: FixPlan, where: string, key: string, md: boolean): string[] {
  const tick = (text: string) => text.replace(/`/g, md ? '`' : '');
  if (plan.update.action === 'delete') {
    return [
      `One conditional delete per record, in ${where}, of the record with ${key}: it is deleted only if every field read still holds the value read (${plan.target.backend === 'sqlite' ? 'every column is compared' : 'every attribute read is compared; one added after the read is not seen by the guard'}), and the journal keeps the whole record so undo can create it again where it is still absent.`,
      '',
      tick(
        'A record changed by someone else between read and write is skipped (`conflict`) and left as it is; a record already gone is skipped (`not_found`).',
      ),
    ];
  }
  const fields = plan.update.set.map((f) => `- ${code(f.field, md)} ← ${code(templateText(f.template), md)}`);
  return [
    `One record created per record, in ${where}, with ${key}, only where no record has that key (never a replace):`,
    '',
    ...fields,
    '',
    tick(
      'A field whose value is missing is left out. A key that already names a record is skipped (`exists`); one created by someone else between read and write is skipped (`conflict`). Undo deletes a created record only while it still holds what was created.',
    ),
  ];
}

/** The update's fields, for the Writes section. */
function describeUpdate(plan: FixPlan, where: string, key: string, md: boolean, out: string[], li: (text: string) => void): void {
  out.push(`One conditional update per record, in ${where}, on the record with ${key}:`, '');
  for (const f of plan.update.set) {
    const guard = f.overwrite
      ? 'overwrite: replaces a different value, only if the field still holds the value read'
      : 'fill-only: written only where the field is absent or null, and the write is conditional on that';
    li(`${code(f.field, md)} ← ${code(templateText(f.template), md)} (${guard})`);
  }
  for (const f of plan.update.remove ?? []) {
    li(
      `${code(f, md)} removed (${plan.target.backend === 'sqlite' ? 'set NULL' : 'REMOVE'}), only if it still holds the value read; already absent: no change`,
    );
  }
  for (const t of plan.update.touch) {
    li(`${code(t.field, md)} ← ${code(templateText(t.template), md)} (touch: written only together with another change)`);
  }
  out.push(
    '',
    'A field whose value is missing is left out. A record where nothing would change is skipped (`no_change`); a record changed by someone else between read and write is skipped (`conflict`) and left as it is; a record deleted meanwhile is skipped (`not_found`).'.replace(
      /`/g,
      md ? '`' : '',
    ),
    '',
  );
}
