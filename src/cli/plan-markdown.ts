/**
 * `datafix plan --format markdown`: a saved plan summarised for a pull-request comment, as a
 * Terraform plan comment summarises infrastructure changes. It names the target without
 * credentials, counts records per outcome and reason, shows the first few records of each
 * (field-level diffs for the records that would change), gives the spec's checksum, and says how
 * to apply the plan. The record lines are the dry run's, so the comment and the plan file agree.
 */
import { redactText } from '../adapters/redact.js';
import { describeTarget } from '../adapters/registry.js';
import type { EngineEvent, RecordEvent, RecordOutcome, RunSummary } from '../engine/events.js';
import type { FixPlan } from '../plan/types.js';
import { formatValue } from '../plan/values.js';
import { changeNote, formatKey } from './format.js';

/** Records shown per outcome and reason: enough to judge a reason, never the whole table. */
export const SAMPLE_PER_GROUP = 5;

interface Group {
  readonly outcome: RecordOutcome;
  readonly reason: string | undefined;
  count: number;
  readonly samples: RecordEvent[];
}

/**
 * Collects, from a dry run's record events, the count of every outcome and reason and the first
 * `perGroup` records of each. Memory is bounded by the number of reasons, not of records.
 */
export class PlanDigest {
  private readonly groups = new Map<string, Group>();

  constructor(private readonly perGroup = SAMPLE_PER_GROUP) {}

  /** Takes one engine event; anything but a record event is ignored. */
  take(e: EngineEvent): void {
    if (e.type !== 'record') return;
    const reason = e.outcome === 'updated' ? undefined : (e.reason ?? 'error');
    const id = `${e.outcome}\0${reason ?? ''}`;
    let g = this.groups.get(id);
    if (!g) {
      g = { outcome: e.outcome, reason, count: 0, samples: [] };
      this.groups.set(id, g);
    }
    g.count++;
    if (g.samples.length < this.perGroup) g.samples.push(e);
  }

  /** Would-be updates first, then skip reasons, then failure reasons; most records first. */
  ordered(): readonly Group[] {
    const rank: Record<RecordOutcome, number> = { updated: 0, skipped: 1, failed: 2 };
    return [...this.groups.values()].sort(
      (a, b) => rank[a.outcome] - rank[b.outcome] || b.count - a.count || (a.reason ?? '').localeCompare(b.reason ?? ''),
    );
  }
}

/** A code span that survives backticks in `text` (CommonMark: a longer delimiter run). */
function inlineCode(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return longest > 0 ? `${fence} ${text} ${fence}` : `${fence}${text}${fence}`;
}

/** A fenced block that no backtick run inside `body` can close early. */
function fenced(lang: string, body: string): string {
  const longest = Math.max(0, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${body}\n${fence}`;
}

function diffOf(e: RecordEvent): string {
  const action = e.target?.action;
  const lines = [`@@ ${formatKey(e.target?.key ?? e.key)}${action ? ` (${action})` : ''} @@`];
  for (const c of e.changes ?? []) {
    // A deleted record's fields only go, a created record's only come.
    if (action !== 'create') lines.push(`- ${c.field}: ${formatValue(c.before)}`);
    if (action !== 'delete') lines.push(`+ ${c.field}: ${formatValue(c.after)}${action ? '' : changeNote(c)}`);
  }
  return lines.join('\n');
}

const records = (n: number) => `${n} record${n === 1 ? '' : 's'}`;

function groupTitle(g: Group): string {
  const what = g.outcome === 'updated' ? 'would update' : `${g.outcome}: ${inlineCode(g.reason ?? '')}`;
  const shown = g.count > g.samples.length ? ` (first ${g.samples.length})` : '';
  return `${what} — ${records(g.count)}${shown}`;
}

export interface PlanMarkdownInput {
  readonly plan: FixPlan;
  /** The spec as the user named it. */
  readonly specFile: string;
  /** The plan file, as given to --out. */
  readonly out: string;
  readonly summary: RunSummary;
  readonly digest: PlanDigest;
  /** The `--env NAME` the plan was made with, so the apply command names it too. */
  readonly env?: string;
}

/**
 * The comment: a heading, the facts table (target, spec and checksum, plan file), counts per
 * outcome and reason, a bounded sample per group, and the apply commands. Deterministic for a
 * given plan: no timings, no clock.
 */
export function renderPlanMarkdown(input: PlanMarkdownInput): string {
  const { plan, summary, digest } = input;
  const groups = digest.ordered();
  const out: string[] = [
    `### datafix plan: ${inlineCode(plan.fix)}`,
    '',
    '| | |',
    '| --- | --- |',
    // describeTarget never includes credentials (an endpoint's user info and query are dropped).
    `| target | ${inlineCode(describeTarget(plan.target))} |`,
    `| spec | ${inlineCode(input.specFile)}, sha256 ${inlineCode(plan.specChecksum)} |`,
    `| plan file | ${inlineCode(input.out)} |`,
    `| records read | ${summary.total} |`,
    '',
    '| outcome | reason | records |',
    '| --- | --- | ---: |',
    ...groups.map(
      (g) => `| ${g.outcome === 'updated' ? 'would update' : g.outcome} | ${g.reason ? inlineCode(g.reason) : ''} | ${g.count} |`,
    ),
    '',
  ];
  if (groups.length === 0) out.push('The source matched no records: the plan changes nothing.', '');
  for (const g of groups) {
    out.push(`#### ${groupTitle(g)}`, '');
    if (g.outcome === 'updated') {
      out.push(fenced('diff', g.samples.map(diffOf).join('\n')), '');
    } else {
      const lines = g.samples.map((e) => `${formatKey(e.key)}${g.outcome === 'failed' && e.message ? `: ${redactText(e.message)}` : ''}`);
      out.push(fenced('', lines.join('\n')), '');
    }
  }
  const env = input.env ? ` --env ${input.env}` : '';
  out.push(
    '#### How to apply',
    '',
    'Apply the plan where it was made. `apply` refuses it if the spec or the target changed, and writes a record only while it still holds what the plan recorded as its before-image; a record changed since is reported as drifted and left alone.',
    '',
    fenced('sh', [`datafix apply ${input.out}${env} --dry-run`, `datafix apply ${input.out}${env}`].join('\n')),
    '',
  );
  return out.join('\n');
}
