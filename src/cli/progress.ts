/**
 * Draws a run for a person. In a terminal: a status block redrawn in place (load and validate,
 * connect, process with counts, total, percentage, rate and ETA), with a bounded number of record
 * lines printed above it. Otherwise (pipes, CI, --json): plain lines, every record line.
 *
 * The status block is drawn by this module alone, with plain ANSI escapes: it installs no signal
 * handler, does not take over process.stdout or process.stderr, hides no cursor and writes no
 * temporary file, so Ctrl-C (handled by the command) can stop a run at any moment and leave the
 * terminal as it was.
 */
import type { Writable } from 'node:stream';
import { redactText } from '../adapters/redact.js';
import type { EngineEvent, RecordEvent, RunSummary } from '../engine/events.js';
import type { FixPlan } from '../plan/types.js';
import type { ResumedPart } from '../safety/state.js';
import type { DiffFile } from './diff-file.js';
import { formatDuration, formatProgress, formatRecord, formatResumeStart, formatSummary, type RecordTotal } from './format.js';

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

interface Counts {
  total: number;
  updated: number;
  skipped: number;
  failed: number;
}

function tally(c: Counts, e: EngineEvent): void {
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

/** Whether to draw the live status block: a real terminal, not CI, and stdout not claimed by --json. */
export function useStatusBlock(json: boolean): boolean {
  return !json && Boolean(process.stdout.isTTY) && !process.env.CI && process.env.TERM !== 'dumb';
}

/** Record lines a terminal shows per outcome before it only counts them: 20 changes are ~60 lines. */
export const SHOWN_RECORDS = 20;

/**
 * Decides where each record's line goes: the `--diff-file`, the output (all of them, or the first
 * `bound` per outcome in a terminal), or nowhere (`--quiet`, skipped records without --verbose),
 * and says at the end how many were not shown and where they are.
 */
function recordLines(o: ReporterOptions, bound: number | undefined) {
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
  const lines = recordLines(o, undefined);
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

const ESC = '\u001b';
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** How often (ms) the block is redrawn: often enough to look live, rarely enough to cost nothing. */
const REDRAW_MS = 100;

type StepState = 'pending' | 'running' | 'done' | 'failed' | 'stopped';

/**
 * A few lines at the bottom of a terminal, redrawn in place; text printed through `print` scrolls
 * above them. Lines are cut to the terminal's width so that the block's height is known.
 */
export class StatusBlock {
  private drawn = 0;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly stream: NodeJS.WritableStream & { columns?: number },
    /** The block's lines; `spinner` is the frame to show on a line still in progress. */
    private readonly lines: (spinner: string) => string[],
  ) {
    this.draw();
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
    // The block never keeps the process alive on its own.
    this.timer.unref();
  }

  private erase(): string {
    // Back to the first line of the block, then clear to the end of the screen.
    return this.drawn > 0 ? `${ESC}[${this.drawn}F${ESC}[J` : '';
  }

  private cut(line: string): string {
    // A terminal that reports no width (0) gets whole lines: there is nothing sensible to cut to.
    const columns = this.stream.columns ?? 0;
    if (columns <= 0) return line;
    const width = Math.max(20, columns - 1);
    const chars = [...line];
    return chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : line;
  }

  /** Redraws the block now. */
  draw(): void {
    if (this.stopped) return;
    this.frame++;
    const lines = this.lines(SPINNER[this.frame % SPINNER.length] as string).map((l) => this.cut(l));
    this.stream.write(`${this.erase()}${lines.map((l) => `${l}\n`).join('')}`);
    this.drawn = lines.length;
  }

  /** Prints text above the block (it stays in the scrollback); the block is drawn again below it. */
  print(text: string): void {
    if (this.stopped) {
      this.stream.write(`${text}\n`);
      return;
    }
    this.stream.write(`${this.erase()}${text}\n`);
    this.drawn = 0;
    this.draw();
  }

  /** Draws the block a last time and leaves it on screen; later output goes below it. */
  stop(): void {
    this.draw();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }
}

/** The live display of a run in a terminal: a status block, record lines above it (bounded). */
export function terminalReporter(o: ReporterOptions & { out: NodeJS.WritableStream & { columns?: number } }): Reporter {
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const colors = !process.env.NO_COLOR && Boolean((o.out as { isTTY?: boolean }).isTTY);
  const paint = (code: number, text: string) => (colors ? `${ESC}[${code}m${text}${ESC}[39m` : text);
  const icon: Record<Exclude<StepState, 'running'>, string> = {
    pending: '◻',
    done: paint(32, '✔'),
    failed: paint(31, '✖'),
    stopped: paint(33, '■'),
  };
  let processStarted = 0;
  let lastDraw = 0;
  let total: RecordTotal | undefined;
  let stopping: string | undefined;
  const steps = {
    load: { state: 'running' as StepState, title: `Loading and validating ${o.specFile}` },
    connect: { state: 'pending' as StepState, title: 'Connect' },
    process: { state: 'pending' as StepState, title: o.dryRun ? 'Process records (dry run: nothing is written)' : 'Process records' },
  };
  const lines = recordLines(o, SHOWN_RECORDS);
  const block = new StatusBlock(o.out, (spinner) => {
    const out: string[] = [];
    for (const step of Object.values(steps)) {
      out.push(`${step.state === 'running' ? paint(33, spinner) : icon[step.state]} ${step.title}`);
    }
    if (steps.process.state === 'running') {
      const elapsed = performance.now() - processStarted;
      out.push(
        `  ${stopping ?? (counts.total === 0 && !total ? 'counting and reading the first page…' : formatProgress(counts, elapsed, o.dryRun, total))}`,
      );
    }
    return out;
  });

  return {
    onPlan(plan) {
      steps.load.state = 'done';
      steps.load.title = `Loaded ${plan.fix}: ${plan.lookups.length} lookup(s), ${plan.skip.length} skip rule(s)`;
      steps.connect.state = 'running';
      steps.connect.title = 'Connecting';
      block.draw();
    },
    onConnected(target) {
      steps.connect.state = 'done';
      steps.connect.title = `Connected to ${target}`;
      steps.process.state = 'running';
      processStarted = performance.now();
      block.draw();
    },
    onTotal(t) {
      total = t;
    },
    onResume(earlier) {
      block.print(formatResumeStart(earlier));
    },
    onInterrupt(text) {
      stopping = text;
      block.print(text);
    },
    onEvent(e) {
      tally(counts, e);
      if (e.type === 'record') {
        const line = lines.line(e);
        if (line) block.print(line);
      } else if (e.type === 'throttled') {
        block.print(`  throttled: requeued ${e.records} write(s), concurrency now ${e.concurrency}, waiting ${e.waitMs} ms`);
      } else if (e.type === 'page' && (e.index === 0 || performance.now() - lastDraw >= REDRAW_MS)) {
        // The first page's counts at once, then at the block's own pace.
        lastDraw = performance.now();
        block.draw();
      }
      return undefined;
    },
    abandon() {
      block.stop();
      o.diffFile?.close();
    },
    async end({ summary, interrupted, error, journal, earlier }) {
      o.diffFile?.close();
      if (summary) {
        const failed = summary.failed > 0 ? `: ${summary.failed} failed` : '';
        // A step that ended with failed records, or was cut short, is never drawn as a success.
        steps.process.state = interrupted ? 'stopped' : summary.failed > 0 ? 'failed' : 'done';
        steps.process.title = `${interrupted ? 'Interrupted after' : 'Processed'} ${summary.total} record(s) in ${formatDuration(summary.durationMs)}${failed}`;
      } else {
        // The step that was running failed; its line carries the message, never with credentials.
        const running = Object.values(steps).find((s) => s.state === 'running');
        const message = redactText(error instanceof Error ? error.message : String(error ?? 'stopped')).split('\n')[0];
        if (running) {
          running.state = 'failed';
          running.title = `${running.title}: ${message}`;
        }
      }
      for (const step of Object.values(steps)) if (step.state === 'running') step.state = 'stopped';
      block.stop();
      const closing = lines.closing(journal);
      if (closing && summary) o.out.write(`${closing}\n`);
      if (summary) o.out.write(`${formatSummary(summary, interrupted, earlier)}\n`);
    },
  };
}

/**
 * The preview pass before the question, in a terminal: two lines on `err` redrawn in place (what
 * it checks; the counts, total, percentage and ETA), left as one line with its outcome at the end.
 */
export function previewProgress(err: NodeJS.WritableStream & { columns?: number }, title: string) {
  // `title` is "what FIX would change on TARGET".
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const started = performance.now();
  let total: RecordTotal | undefined;
  let ended: string | undefined;
  let stopping: string | undefined;
  let lastDraw = 0;
  const block = new StatusBlock(err, (spinner) => {
    if (ended) return [ended];
    const now =
      stopping ??
      (counts.total === 0 && !total
        ? 'counting and reading the first page…'
        : formatProgress(counts, performance.now() - started, true, total));
    return [`${spinner} checking ${title}`, `  ${now}`];
  });
  return {
    onTotal(t: RecordTotal): void {
      total = t;
    },
    onEvent(e: EngineEvent): void {
      tally(counts, e);
      // The first page's counts at once (a short preview may end before the next redraw), then
      // at the block's own pace.
      if (e.type === 'page' && (e.index === 0 || performance.now() - lastDraw >= REDRAW_MS)) {
        lastDraw = performance.now();
        block.draw();
      }
    },
    /** A first Ctrl-C: the line says the pass is stopping. */
    onInterrupt(text: string): void {
      stopping = text;
      block.draw();
    },
    /** Leaves the line on screen: done, or stopped before the end. */
    end(interrupted: boolean): void {
      const took = formatDuration(Math.round(performance.now() - started));
      // Failed records are never drawn as a success.
      ended = interrupted
        ? `■ stopped checking ${title} after ${counts.total} record(s)`
        : `${counts.failed > 0 ? '✖' : '✔'} checked ${title}: ${counts.total} record(s) read in ${took}${counts.failed > 0 ? `, ${counts.failed} failed` : ''}`;
      block.stop();
    },
  };
}
