/** Text a person reads: record lines, field diffs and the summary block. */
import { redactText } from '../adapters/redact.js';
import type { Item, RecordCount } from '../adapters/types.js';
import type { FieldChange, RecordEvent, RunSummary } from '../engine/events.js';
import { formatValue } from '../plan/values.js';
import type { ResumedPart } from '../safety/state.js';

export function formatKey(key: Item): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : formatValue(v)}`)
    .join(' ');
}

/** One field's change; `whole`: of a record deleted or created whole, where guards need no note. */
export function formatChange(c: FieldChange, whole = false): string {
  const note = whole ? '' : changeNote(c);
  return `${c.field}: ${formatValue(c.before)} → ${formatValue(c.after)}${note}`;
}

/** How a field is written, after its diff: touch, remove, overwrite, or nothing for fill-only. */
export function changeNote(c: FieldChange): string {
  return c.touch || c.guard === 'none' ? ' (touch)' : c.remove ? ' (remove)' : c.guard === 'absent' ? '' : ' (overwrite)';
}

/** The verb of an updated record's line: update, or delete / create for a whole record. */
export function writeVerb(e: RecordEvent, dryRun: boolean): string {
  const verb = e.target?.action ?? 'update';
  return dryRun ? `would ${verb}` : `${verb}d`;
}

/** One line per record event, or undefined when the event is not shown at this verbosity. */
export function formatRecord(e: RecordEvent, dryRun: boolean, verbose: boolean): string | undefined {
  const key = formatKey(e.key);
  if (e.outcome === 'updated') {
    const whole = e.target?.action !== undefined;
    const lines = [`~ ${key} ${writeVerb(e, dryRun)}`, ...(e.changes ?? []).map((c) => `    ${formatChange(c, whole)}`)];
    return lines.join('\n');
  }
  if (e.outcome === 'failed') return `✗ ${key} failed: ${e.reason ?? 'error'}${e.message ? ` (${redactText(e.message)})` : ''}`;
  return verbose ? `- ${key} skipped: ${e.reason ?? ''}` : undefined;
}

/** The line a resumed run prints before it starts: what it continues, from when. */
export function formatResumeStart(e: ResumedPart): string {
  const c = e.counts;
  const outcomes = c ? `; ${c.updated} updated, ${c.skipped} skipped, ${c.failed} failed` : '';
  return `resuming after ${e.records} record(s) in ${e.pages} page(s) of the run started ${e.startedAt} (last checkpoint ${e.savedAt}${outcomes}); journal ${e.journal}`;
}

/**
 * The summary block. For a resumed run (`earlier`) it has two columns: this process's part and
 * the whole run's totals (the interrupted part added).
 */
export function formatSummary(s: RunSummary, interrupted = false, earlier?: ResumedPart): string {
  const head = s.dryRun
    ? 'Summary (dry run: nothing was written)'
    : `Summary${interrupted ? ' (interrupted)' : ''}${earlier ? ` (resumed: this run and the whole run since ${earlier.startedAt})` : ''}`;
  // The interrupted part's outcomes, when they cover every record it read; else the whole run's
  // outcome counts are unknown ('-').
  const c = earlier?.counts && earlier.counts.total === earlier.records ? earlier.counts : undefined;
  const reasons = Object.keys({ ...(c?.reasons ?? {}), ...s.reasons }).sort((a, b) => a.localeCompare(b));
  // One column: labels 8 wide, reasons in a column of their own (as always). Two columns: every
  // label as wide as the widest, so that both columns line up.
  const longest = Math.max(8, ...reasons.map((r) => r.length));
  const width = earlier ? longest + 2 : 8;
  const row = (label: string, mine: number, before: number | undefined, note = '') =>
    earlier
      ? `  ${label.padEnd(width)}  ${String(mine).padEnd(9)}  ${before === undefined ? '-' : mine + before}${note}`
      : `  ${label.padEnd(width)}  ${mine}${note}`;
  const lines = [head];
  if (earlier) lines.push(`  ${''.padEnd(width)}  ${'this run'.padEnd(9)}  whole run`);
  lines.push(row('total', s.total, earlier?.records));
  // A delete or create fix counts its whole-record writes where an update fix counts updates.
  const written = s.action === 'delete' ? 'deleted' : s.action === 'create' ? 'created' : 'updated';
  lines.push(row(written, s.updated, c?.updated, s.dryRun ? ` (would be ${written})` : ''));
  lines.push(row('skipped', s.skipped, c?.skipped));
  lines.push(row('failed', s.failed, c?.failed));
  if (reasons.length) {
    lines.push('  by reason');
    for (const r of reasons) {
      if (earlier) lines.push(row(`  ${r}`, s.reasons[r] ?? 0, c ? (c.reasons[r] ?? 0) : undefined));
      else lines.push(`    ${r.padEnd(longest)}  ${s.reasons[r] ?? 0}`);
    }
  }
  lines.push(`  ${'duration'.padEnd(width)}  ${formatDuration(s.durationMs)}`);
  return lines.join('\n');
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * How many records a run will read, for the percentage and the ETA: exact (a SQLite count, or
 * what the preview pass read) or an estimate (DynamoDB's table or index item count).
 */
export type RecordTotal = RecordCount;

/** A wait a person reads: `13 s`, `2 min 5 s`, `1 h 3 min`. */
export function formatEta(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * One progress line: records read (of the total, with a percentage, when known), outcomes, rate
 * and the time left at that rate. An estimated total is marked `~` and named as an estimate.
 */
export function formatProgress(
  c: { total: number; updated: number; skipped: number; failed: number },
  elapsedMs: number,
  dryRun: boolean,
  total?: RecordTotal,
): string {
  const rate = elapsedMs > 0 ? Math.round((c.total * 1000) / elapsedMs) : 0;
  const outcomes = `${c.updated} ${dryRun ? 'would update' : 'updated'} · ${c.skipped} skipped · ${c.failed} failed · ${rate}/s`;
  if (!total) return `${c.total} read · ${outcomes}`;
  const approx = total.estimate ? '~' : '';
  if (c.total > total.records) {
    // An estimate can be low (items added since DynamoDB last counted): no percentage beats a wrong one.
    return `${c.total} read (more than the estimated ${total.records}) · ${outcomes}`;
  }
  const percent = total.records === 0 ? 100 : Math.floor((c.total * 100) / total.records);
  const left = total.records - c.total;
  const eta = left === 0 ? '' : c.total > 0 && elapsedMs > 0 ? ` · ETA ${approx}${formatEta((left * elapsedMs) / c.total)}` : '';
  return `${c.total} of ${approx}${total.records} read (${percent}%${total.estimate ? ', total estimated' : ''}) · ${outcomes}${eta}`;
}

/** `Apply summary`, `Undo summary (dry run, interrupted)`: a summary's heading and what qualifies it. */
export function summaryHeading(name: string, qualifiers: { readonly dryRun: boolean; readonly interrupted?: boolean }): string {
  const tags = [...(qualifiers.dryRun ? ['dry run'] : []), ...(qualifiers.interrupted ? ['interrupted'] : [])];
  return `${name} summary${tags.length > 0 ? ` (${tags.join(', ')})` : ''}`;
}

/**
 * A count of records handled with what became of them: `120 of 300 (40%) · <outcomes> · 95/s ·
 * ETA 2 s` (without the total, percentage and ETA while the total is not known).
 */
function handledLine(handled: number, total: number | undefined, elapsedMs: number, outcomes: string): string {
  const rate = elapsedMs > 0 ? handled / (elapsedMs / 1000) : 0;
  const of = total !== undefined && total > 0 ? ` of ${total} (${Math.floor((100 * handled) / total)}%)` : '';
  const eta = total !== undefined && rate > 0 && handled < total ? ` · ETA ${formatEta(((total - handled) / rate) * 1000)}` : '';
  return `${handled}${of} · ${outcomes} · ${Math.round(rate)}/s${eta}`;
}

/** One progress line of `undo`: journaled writes handled (of the journal's), as `apply`'s line. */
export function formatUndoProgress(
  c: { readonly handled: number; readonly restored: number; readonly conflicts: number; readonly failed: number },
  total: number | undefined,
  elapsedMs: number,
  dryRun: boolean,
): string {
  return handledLine(
    c.handled,
    total,
    elapsedMs,
    `${c.restored} ${dryRun ? 'would restore' : 'restored'} · ${c.conflicts} conflict(s) · ${c.failed} failed`,
  );
}

/**
 * `apply`'s counts so far, as a task list shows them: `120 of 300 (40%) · 118 applied · 2 drifted ·
 * 0 failed · 95/s · ETA 2 s` (without the total, percentage and ETA before the plan was counted).
 */
export function formatApplyProgress(
  c: { readonly handled: number; readonly applied: number; readonly drifted: number; readonly failed: number },
  planned: number | undefined,
  elapsedMs: number,
  dryRun: boolean,
): string {
  return handledLine(
    c.handled,
    planned,
    elapsedMs,
    `${c.applied} ${dryRun ? 'would apply' : 'applied'} · ${c.drifted} drifted · ${c.failed} failed`,
  );
}
