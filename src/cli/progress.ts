/**
 * Draws a run for a person. In a terminal: a listr2 task list (see task-list.ts: load and
 * validate, connect, process with counts, total, percentage, rate and ETA), with a bounded number
 * of record lines printed above it. Otherwise (pipes, CI, --json): plain lines from this module,
 * every record line. The types and the choice of record lines are shared by both.
 */
import type { Writable } from 'node:stream';
import type { EngineEvent, RecordEvent, RunSummary } from '../engine/events.js';
import type { FixPlan } from '../plan/types.js';
import type { ResumedPart } from '../safety/state.js';
import type { DiffFile } from './diff-file.js';
import { formatProgress, formatRecord, formatResumeStart, formatSummary, type RecordTotal } from './format.js';

export interface ReporterOptions {
  readonly specFile: string;
  readonly dryRun: boolean;
  readonly verbose: boolean;
  /** `--quiet`: no record lines at all, only the progress counts and the summary. */
  readonly quiet?: boolean;
  /** `--diff-file`: record lines go to this JSON Lines file instead of the output. */
  readonly diffFile?: DiffFile;
  /** Where record lines and the summary go (stderr under --json). */
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/** How a run ended, for `Reporter.end`. */
export interface RunEnd {
  readonly summary?: RunSummary;
  readonly interrupted?: boolean;
  readonly error?: unknown;
  /** A live run's journal: it holds every write, including those whose lines were not shown. */
  readonly journal?: string;
  /** A resumed run: the interrupted part, for the whole run's totals. */
  readonly earlier?: ResumedPart;
}

export interface Reporter {
  onPlan(plan: FixPlan): void;
  onConnected(target: string): void;
  /** How many records the run will read, once known (exact, or an estimate said to be one). */
  onTotal(total: RecordTotal): void;
  /** A resumed run: printed at once, before the first record. */
  onResume(earlier: ResumedPart): void;
  /** A first Ctrl-C: says what happens now, without tearing the display. */
  onInterrupt(text: string): void;
  /**
   * Draws one event. For a `page` event it returns a promise when the output stream's buffer is
   * full; the engine waits for it, so a slow reader (`| less`) slows the run instead of letting
   * unwritten lines pile up in memory.
   */
  onEvent(event: EngineEvent): void | Promise<void>;
  /**
   * Stops drawing at once (a second Ctrl-C, just before the process exits): synchronous, leaves
   * the terminal on a fresh line.
   */
  abandon(): void;
  /** The run ended (normally or not); prints what is left to print. */
  end(result: RunEnd): Promise<void>;
}

/** Records read so far, by outcome. */
export interface Counts {
  total: number;
  updated: number;
  skipped: number;
  failed: number;
}

/** Adds a record event to the counts (other events change nothing). */
export function tally(c: Counts, e: EngineEvent): void {
  if (e.type === 'record') {
    c.total++;
    c[e.outcome]++;
  }
}

/** How often (ms) a wait for room in the output also checks the buffer itself. */
const DRAIN_POLL_MS = 50;

/**
 * Writes to a stream and remembers when its buffer filled up (`write` returned false), so the
 * caller can wait for room at a point where waiting is safe (a page boundary).
 */
export function backpressured(stream: NodeJS.WritableStream): {
  write(text: string | Uint8Array): void;
  room(): Promise<void> | undefined;
} {
  let full = false;
  /** The wait in progress: callers that ask again while it lasts share it (one set of listeners). */
  let pending: Promise<void> | undefined;
  return {
    write(text) {
      if (!stream.write(text)) full = true;
    },
    room() {
      if (pending) return pending;
      if (!full) return undefined;
      full = false;
      // The buffer may have emptied while the engine awaited its writes: 'drain' then already
      // fired, and waiting for another would wait forever (Node exits 13 with the await unsettled).
      const w = stream as Partial<Writable>;
      const flushed = () => w.writableNeedDrain === false || w.writableLength === 0;
      if (flushed()) return undefined;
      // A stream already destroyed (the reader went away) never drains: nothing to wait for.
      if (w.destroyed) return undefined;
      // 'close' and 'error' end the wait too: a reader that went away (`| head`) must not hang
      // the run; the stream reports that failure itself. 'drain' alone is not enough: on a pipe
      // whose reader went away, stdout can hold nothing while its needDrain flag stays set, and no
      // event comes. So a timer also looks at the buffer; being a live timer, it keeps the process
      // from exiting (13) with this wait unsettled.
      pending = new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (flushed() || w.destroyed) done();
        }, DRAIN_POLL_MS);
        const done = () => {
          clearInterval(timer);
          stream.off('drain', done);
          stream.off('close', done);
          stream.off('error', done);
          pending = undefined;
          resolve();
        };
        stream.on('drain', done);
        stream.on('close', done);
        stream.on('error', done);
      });
      return pending;
    },
  };
}

/**
 * Whether to draw the listr2 task list: a real terminal that reports its width (listr2 fits its
 * lines to it), not CI, and stdout not claimed by --json.
 */
export function useTaskList(json: boolean): boolean {
  return !json && Boolean(process.stdout.isTTY) && !process.env.CI && process.env.TERM !== 'dumb' && hasWidth();
}

/** Whether stdout is a terminal that reports a width: one that reports 0 gets no drawing in place. */
export function hasWidth(): boolean {
  return (process.stdout.columns ?? 0) > 0;
}

/** Record lines a terminal shows per outcome before it only counts them: 20 changes are ~60 lines. */
export const SHOWN_RECORDS = 20;

/**
 * Decides where each record's line goes: the `--diff-file`, the output (all of them, or the first
 * `bound` per outcome in a terminal), or nowhere (`--quiet`, skipped records without --verbose),
 * and says at the end how many were not shown and where they are.
 */
export function recordLines(o: ReporterOptions, bound: number | undefined) {
  const shown: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const hidden: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  return {
    /** The text to print for this record now, if any. */
    line(e: RecordEvent): string | undefined {
      if (e.outcome === 'skipped' && !o.verbose) return undefined;
      if (o.diffFile) {
        o.diffFile.record(e);
        return undefined;
      }
      if (o.quiet) return undefined;
      const text = formatRecord(e, o.dryRun, o.verbose);
      if (text === undefined) return undefined;
      if (bound !== undefined && shown[e.outcome] >= bound) {
        hidden[e.outcome]++;
        hidden.total++;
        return undefined;
      }
      shown[e.outcome]++;
      return text;
    },
    /** What became of the lines not printed, or undefined when every line was printed. */
    closing(journal: string | undefined): string | undefined {
      if (o.diffFile) return `record lines: ${o.diffFile.records} written to ${o.diffFile.path} (JSON Lines)`;
      if (hidden.total === 0) return undefined;
      const parts = [
        hidden.updated ? `${hidden.updated} ${o.dryRun ? 'change(s)' : 'updated record(s)'}` : '',
        hidden.failed ? `${hidden.failed} failed record(s)` : '',
        hidden.skipped ? `${hidden.skipped} skipped record(s)` : '',
      ].filter(Boolean);
      const where = journal
        ? [`the journal ${journal} holds every write`, '--diff-file PATH writes every record as JSON Lines']
        : ['--diff-file PATH writes every record as JSON Lines', 'so does plain output redirected to a file (> records.txt)'];
      return `… ${parts.join(', ')} more not shown (the first ${bound} of each kind are above): ${where.join('; ')}`;
    },
  };
}

/**
 * Plain lines for pipes, files, CI and --json: the header on stderr, every record line on `out`
 * (unless --quiet or --diff-file), a progress line on stderr every few seconds (every page with
 * --verbose) and the summary on `out`.
 */
export function plainReporter(o: ReporterOptions): Reporter {
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const started = performance.now();
  let lastProgress = started;
  let total: RecordTotal | undefined;
  const out = backpressured(o.out);
  // A person reads a terminal even where nothing is drawn in place (TERM=dumb, no width, CI
  // unset or not): every record line there would be 720k lines for 240k changes.
  const lines = recordLines(o, (o.out as { isTTY?: boolean }).isTTY ? SHOWN_RECORDS : undefined);
  return {
    onPlan(plan) {
      o.err.write(`datafix ${plan.fix}${o.dryRun ? ' (dry run: nothing will be written)' : ''}\n  spec    ${o.specFile}\n`);
    },
    onConnected(target) {
      o.err.write(`  target  ${target}\n`);
    },
    onTotal(t) {
      total = t;
    },
    onResume(earlier) {
      o.err.write(`${formatResumeStart(earlier)}\n`);
    },
    onInterrupt(text) {
      o.err.write(`\n${text}\n`);
    },
    onEvent(e) {
      tally(counts, e);
      if (e.type === 'record') {
        const line = lines.line(e);
        if (line) out.write(`${line}\n`);
      } else if (e.type === 'throttled') {
        o.err.write(`  throttled: requeued ${e.records} write(s), concurrency now ${e.concurrency}, waiting ${e.waitMs} ms\n`);
      } else if (e.type === 'page') {
        const now = performance.now();
        // A progress line every few seconds keeps CI logs readable on long runs.
        if (o.verbose || now - lastProgress > 5000) {
          lastProgress = now;
          o.err.write(`  … ${formatProgress(counts, now - started, o.dryRun, total)}\n`);
        }
        return out.room();
      }
      return undefined;
    },
    abandon() {
      o.diffFile?.close();
    },
    async end({ summary, interrupted, journal, earlier }) {
      o.diffFile?.close();
      const closing = lines.closing(journal);
      if (closing && summary) o.err.write(`${closing}\n`);
      if (summary) o.out.write(`${formatSummary(summary, interrupted, earlier)}\n`);
    },
  };
}

/**
 * Record lines of `undo` and `apply`: every line through a pipe or into a file, the first
 * SHOWN_RECORDS of each kind in a terminal (a person reads it: 180k restores are 180k lines),
 * and at the end a line saying how many were not shown. Given `print` (a task list's), the lines
 * go there instead of `out`.
 */
export function boundedRecordLines(out: NodeJS.WritableStream, print?: (text: string) => void) {
  // `print`: a task list draws the lines above itself (in a terminal, so bounded as one).
  const lines = print ? { write: print, room: () => undefined } : backpressured(out);
  const bound = print || (out as { isTTY?: boolean }).isTTY ? SHOWN_RECORDS : undefined;
  const shown = new Map<string, number>();
  let hidden = 0;
  return {
    /** Writes `text` unless `kind` has shown its share; a promise while the output is full. */
    write(kind: string, text: string): Promise<void> | undefined {
      const n = shown.get(kind) ?? 0;
      if (bound !== undefined && n >= bound) hidden++;
      else {
        shown.set(kind, n + 1);
        lines.write(text);
      }
      return lines.room();
    },
    /** The line that says how many were not shown, or undefined. */
    closing(): string | undefined {
      return hidden
        ? `… ${hidden} more record line(s) not shown (the first ${bound} of each kind are above); output redirected to a file holds every line`
        : undefined;
    },
  };
}
