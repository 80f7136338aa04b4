/** Text a person reads: record lines, field diffs and the summary block. */
import { redactText } from '../adapters/redact.js';
import type { Item } from '../adapters/types.js';
import type { FieldChange, RecordEvent, RunSummary } from '../engine/events.js';
import { formatValue } from '../plan/values.js';

export function formatKey(key: Item): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : formatValue(v)}`)
    .join(' ');
}

export function formatChange(c: FieldChange): string {
  const note = c.touch || c.guard === 'none' ? ' (touch)' : c.guard === 'absent' ? '' : ' (overwrite)';
  return `${c.field}: ${formatValue(c.before)} → ${formatValue(c.after)}${note}`;
}

/** One line per record event, or undefined when the event is not shown at this verbosity. */
export function formatRecord(e: RecordEvent, dryRun: boolean, verbose: boolean): string | undefined {
  const key = formatKey(e.key);
  if (e.outcome === 'updated') {
    const verb = dryRun ? 'would update' : 'updated';
    const lines = [`~ ${key} ${verb}`, ...(e.changes ?? []).map((c) => `    ${formatChange(c)}`)];
    return lines.join('\n');
  }
  if (e.outcome === 'failed') return `✗ ${key} failed: ${e.reason ?? 'error'}${e.message ? ` (${redactText(e.message)})` : ''}`;
  return verbose ? `- ${key} skipped: ${e.reason ?? ''}` : undefined;
}

export function formatSummary(s: RunSummary, interrupted = false): string {
  const head = s.dryRun ? 'Summary (dry run: nothing was written)' : interrupted ? 'Summary (interrupted)' : 'Summary';
  const width = Math.max(8, ...Object.keys(s.reasons).map((r) => r.length));
  const lines = [
    head,
    `  total     ${s.total}`,
    `  updated   ${s.updated}${s.dryRun ? ' (would be updated)' : ''}`,
    `  skipped   ${s.skipped}`,
    `  failed    ${s.failed}`,
  ];
  const reasons = Object.entries(s.reasons);
  if (reasons.length) {
    lines.push('  by reason');
    for (const [r, n] of reasons) lines.push(`    ${r.padEnd(width)}  ${n}`);
  }
  lines.push(`  duration  ${formatDuration(s.durationMs)}`);
  return lines.join('\n');
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatProgress(
  c: { total: number; updated: number; skipped: number; failed: number },
  elapsedMs: number,
  dryRun: boolean,
): string {
  const rate = elapsedMs > 0 ? Math.round((c.total * 1000) / elapsedMs) : 0;
  return `${c.total} read · ${c.updated} ${dryRun ? 'would update' : 'updated'} · ${c.skipped} skipped · ${c.failed} failed · ${rate}/s`;
}
