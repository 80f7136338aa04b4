/**
 * The live display of a run in a terminal, drawn by listr2, datafix's task-output library: the
 * preview pass before the question, and the run itself (load and validate, connect, process
 * records). Progress is task output (records read of the total, percentage, rate, ETA); a task
 * ends ✔ done, ✖ with the number of failed records (or the error), ■ interrupted.
 *
 * This is the only module that imports listr2. Ctrl-C belongs to the run command: every list is
 * made with listr2's `registerSignalListeners: false`, since listr2's own handler ends the process
 * with exit 127 before the checkpoint, the summary and the lock's release.
 */
import {
  Listr,
  type ListrDefaultRenderer,
  ListrDefaultRendererLogLevels,
  ListrLogger,
  ListrLogLevels,
  type ListrSimpleRenderer,
  type ListrTaskWrapper,
  ProcessOutput,
} from 'listr2';
import { redactText } from '../adapters/redact.js';
import type { EngineEvent, RunSummary } from '../engine/events.js';
import type { FixPlan } from '../plan/types.js';
import { formatDuration, formatProgress, formatResumeStart, formatSummary, type RecordTotal } from './format.js';
import { type Counts, hasWidth, type Reporter, type ReporterOptions, recordLines, SHOWN_RECORDS, tally } from './progress.js';

/** How often (ms) the progress text is refreshed while no page arrives, so rate and ETA stay current. */
const REFRESH_MS = 500;
/** At least this long (ms) between two progress texts set from pages: listr2 redraws on each. */
const PAGE_REDRAW_MS = 100;

/** log-update's `eraseLines(count)`: erase the cursor's line and `count - 1` above, to column 1. */
function eraseLines(count: number): string {
  let clear = '';
  for (let i = 0; i < count; i++) clear += `\u001b[2K${i < count - 1 ? '\u001b[1A' : ''}`;
  return count > 0 ? `${clear}\u001b[G` : '';
}

/**
 * listr2's process output for one task list, able to print lines above the list while listr2
 * draws it.
 *
 * While its default renderer draws, listr2 takes over process.stdout and process.stderr: what
 * other code writes then is kept in memory and printed when the list ends. datafix's own lines
 * (record lines, the resume line, the interrupt notice) must appear when they happen, without
 * tearing the list. The renderer draws through the `stdout` this class hands it, with log-update,
 * which erases the lines it drew last and writes the list anew; so this class knows the list on
 * screen and its height, and `print` erases it, writes the line, and writes the same list again
 * below, leaving log-update's count of lines to erase true. Nothing is written to a file.
 */
class LinesAboveTaskList extends ProcessOutput {
  /** The list as last drawn (log-update's text), and the lines log-update erases next time. */
  private frame = '';
  private height = 0;
  /** Whether the drawn list is known: false after a write that was not log-update's protocol. */
  private known = true;
  private drawing = false;
  private abandoned = false;
  private readonly handed: NodeJS.WriteStream;

  /** `screen`: the stream listr2 draws on. Both process streams are taken over while it draws. */
  constructor(screen: NodeJS.WriteStream) {
    super(screen, screen === process.stderr ? process.stdout : process.stderr);
    // The renderer reads `columns` and `rows` from it, live: the real stream is its prototype.
    this.handed = Object.assign(Object.create(screen) as NodeJS.WriteStream, {
      write: (chunk: string | Uint8Array) => this.drawn(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')),
    });
  }

  override get stdout(): NodeJS.WriteStream {
    return this.handed;
  }

  override hijack(): void {
    // A list stopped at once (abandon) before listr2 started drawing never takes the streams.
    if (this.abandoned) return;
    super.hijack();
    this.drawing = true;
  }

  override release(): void {
    if (!this.drawing) return;
    this.drawing = false;
    super.release();
  }

  /** One write of the renderer: the erasing of the list drawn last, then the new list. */
  private drawn(text: string): boolean {
    if (this.abandoned) return true;
    if (this.drawing) {
      const erase = eraseLines(this.height);
      this.known = this.known && text.startsWith(erase);
      this.frame = text.slice(erase.length);
      this.height = this.frame === '' ? 0 : this.frame.split('\n').length;
    }
    return this.stream.stdout.write(text);
  }

  /** Prints `line` above the list (it stays in the scrollback); the list is drawn again below it. */
  print(line: string): void {
    const list = this.drawing && this.known ? this.frame : '';
    this.stream.stdout.write(`${list ? eraseLines(this.height) : ''}${line}\n${list}`);
  }

  /**
   * Stops drawing at once, synchronously (a second Ctrl-C, just before the process exits): gives
   * the streams back and leaves the list as last drawn. Safe before listr2 drew anything.
   */
  abandon(): void {
    if (this.abandoned) return;
    this.release();
    this.abandoned = true;
  }
}

/** The message of an error, without credentials, on one line. */
const messageOf = (error: unknown) => redactText(error instanceof Error ? error.message : String(error ?? 'stopped')).split('\n')[0] ?? '';

/**
 * How a task ended when that is not a success: its message is the whole line the task shows
 * after ✖ (listr2 shows a failed task's message instead of its title).
 */
class Outcome extends Error {}

type Task = ListrTaskWrapper<unknown, ListrDefaultRenderer, ListrSimpleRenderer>;

/**
 * A task of the list: runs `body`; an error other than an `Outcome` ends the task with ✖ and its
 * title followed by the error's message, without credentials.
 */
function step(title: string, body: (task: Task) => Promise<void>) {
  return {
    title,
    task: async (_ctx: unknown, task: Task) => {
      try {
        await body(task);
      } catch (error) {
        throw error instanceof Outcome ? error : new Outcome(`${task.title}: ${messageOf(error)}`);
      }
    },
  };
}

/** A promise settled from outside: the list's tasks wait on the run's events. */
function gate<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A gate rejected for a task that never starts is not an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * Starts a listr2 list drawn on `screen` (the default renderer in a terminal; listr2's `simple`
 * renderer, on the same stream, where process.stdout is not one). The promise settles when the
 * list ended, never rejecting: a failed task is shown by the list itself.
 */
function startList(tasks: ReturnType<typeof step>[], screen: NodeJS.WriteStream) {
  const output = new LinesAboveTaskList(screen);
  const list = new Listr(tasks, {
    concurrent: false,
    exitOnError: true,
    registerSignalListeners: false,
    // listr2 fits its lines to process.stdout's width: without one (a terminal that reports 0
    // columns) it would draw a character per line, so it prints a line per change instead.
    fallbackRendererCondition: () => !hasWidth(),
    rendererOptions: {
      logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: output }),
      // Progress text sits under its task, indented, without a marker; ■ marks a stopped task.
      icon: {
        [ListrDefaultRendererLogLevels.OUTPUT]: '',
        [ListrDefaultRendererLogLevels.OUTPUT_WITH_BOTTOMBAR]: '',
        [ListrDefaultRendererLogLevels.SKIPPED_WITH_COLLAPSE]: '■',
      },
    },
    fallbackRendererOptions: {
      logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(screen, screen) }),
      icon: { [ListrLogLevels.SKIPPED]: '■' },
    },
  });
  return {
    output,
    done: list.run().then(
      () => undefined,
      () => undefined,
    ),
  };
}

/**
 * A task's progress text (`text()` says what it is now), set as the task's output from the run's
 * events and drawn by listr2 once it runs the task.
 *
 * listr2 starts drawing a moment after the run starts (its renderer loads first); until it runs
 * the task, a page event returns a promise the engine waits for, so that the first page's counts
 * are drawn, not overtaken by a fast run.
 */
function progressText(text: () => string, every: number) {
  let set: ((output: string) => void) | undefined;
  let lastShown = 0;
  const running = gate<void>();
  const show = () => {
    lastShown = performance.now();
    set?.(text());
  };
  return {
    show,
    /** Called by the task when listr2 runs it: from then on the text is its output. */
    attach(task: Task): void {
      set = (output) => {
        task.output = output;
      };
      running.resolve();
      show();
    },
    /** A page was read: the first one's counts at once, later ones at most every `every` ms. */
    page(index: number, listEnded: Promise<void>): Promise<void> | undefined {
      if (!set) return Promise.race([running.promise, listEnded]).then(show);
      if (index === 0 || performance.now() - lastShown >= every) show();
      return undefined;
    },
  };
}

/** The run in a terminal: a listr2 task list on stdout, the first record lines of each kind above it. */
export function taskListReporter(o: ReporterOptions): Reporter {
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  let processStarted = 0;
  let total: RecordTotal | undefined;
  let stopping: string | undefined;
  const lines = recordLines(o, SHOWN_RECORDS);
  const loaded = gate<FixPlan>();
  /** The target's description, or undefined when the run ended before it connected. */
  const connected = gate<string | undefined>();
  const processed = gate<{ summary: RunSummary; interrupted: boolean }>();
  const progress = progressText(
    () =>
      stopping ??
      (counts.total === 0 && !total
        ? 'counting and reading the first page…'
        : formatProgress(counts, performance.now() - processStarted, o.dryRun, total)),
    PAGE_REDRAW_MS,
  );
  let refresh: NodeJS.Timeout | undefined;
  const stopRefresh = () => {
    if (refresh) clearInterval(refresh);
  };

  const { output, done } = startList(
    [
      step(`Loading and validating ${o.specFile}`, async (task) => {
        const plan = await loaded.promise;
        task.title = `Loaded ${plan.fix}: ${plan.lookups.length} lookup(s), ${plan.skip.length} skip rule(s)${plan.fail?.length ? `, ${plan.fail.length} fail rule(s)` : ''}`;
      }),
      step('Connect', async (task) => {
        task.title = 'Connecting';
        const target = await connected.promise;
        if (target === undefined) task.skip('Not connected: the run stopped first');
        else task.title = `Connected to ${target}`;
      }),
      step(o.dryRun ? 'Process records (dry run: nothing is written)' : 'Process records', async (task) => {
        progress.attach(task);
        // Rate and ETA move on between pages; a long page must not freeze them.
        refresh = setInterval(progress.show, REFRESH_MS);
        refresh.unref();
        let ended: { summary: RunSummary; interrupted: boolean };
        try {
          ended = await processed.promise;
        } finally {
          // Here, not only in `end`: a run that ended before listr2 ran this task would leave the
          // timer setting the output of a finished task.
          stopRefresh();
        }
        const { summary, interrupted } = ended;
        const line = `${interrupted ? 'Interrupted after' : 'Processed'} ${summary.total} record(s) in ${formatDuration(summary.durationMs)}`;
        // A step cut short, or that met failed records, is never drawn as a success.
        if (interrupted) task.skip(line);
        else if (summary.failed > 0) throw new Outcome(`${line}: ${summary.failed} failed`);
        else task.title = line;
      }),
    ],
    process.stdout,
  );
  return {
    onPlan: (plan) => loaded.resolve(plan),
    onConnected(target) {
      processStarted = performance.now();
      connected.resolve(target);
    },
    onTotal(t) {
      total = t;
    },
    onResume(earlier) {
      output.print(formatResumeStart(earlier));
    },
    onInterrupt(text) {
      stopping = text;
      output.print(text);
      progress.show();
    },
    onEvent(e) {
      tally(counts, e);
      if (e.type === 'record') {
        const line = lines.line(e);
        if (line) output.print(line);
      } else if (e.type === 'throttled') {
        output.print(`  throttled: requeued ${e.records} write(s), concurrency now ${e.concurrency}, waiting ${e.waitMs} ms`);
      } else if (e.type === 'page') {
        return progress.page(e.index, done);
      }
      return undefined;
    },
    abandon() {
      stopRefresh();
      output.abandon();
      o.diffFile?.close();
    },
    async end({ summary, interrupted, error, journal, earlier }) {
      stopRefresh();
      o.diffFile?.close();
      if (summary) {
        connected.resolve(undefined);
        processed.resolve({ summary, interrupted: interrupted ?? false });
      } else {
        loaded.reject(error);
        connected.reject(error);
        processed.reject(error);
      }
      await done;
      const closing = lines.closing(journal);
      if (closing && summary) o.out.write(`${closing}\n`);
      if (summary) o.out.write(`${formatSummary(summary, interrupted, earlier)}\n`);
    },
  };
}

/** How the preview pass ended, for `PreviewTaskList.end`. */
export interface PreviewEnd {
  readonly interrupted: boolean;
  readonly error?: unknown;
}

/** The preview pass's display: progress while it reads, its outcome when done. */
export interface PreviewTaskList {
  onTotal(total: RecordTotal): void;
  /** A page event returns a promise while listr2 has not started drawing: the engine waits for it. */
  onEvent(event: EngineEvent): Promise<void> | undefined;
  /** A first Ctrl-C: the progress text says the pass is stopping. */
  onInterrupt(text: string): void;
  /** Stops drawing at once (a second Ctrl-C, just before the process exits). */
  abandon(): void;
  /** Leaves the task on screen with its outcome; resolves when listr2 gave the terminal back. */
  end(outcome: PreviewEnd): Promise<void>;
}

/**
 * The preview pass before the question, in a terminal: one listr2 task on stderr, "checking what
 * FIX would change on TARGET" (`title` is "what FIX would change on TARGET"), with the counts,
 * total, percentage and ETA as its output; it ends ✔, ✖ with the failed records, or ■ stopped.
 */
export function previewTaskList(title: string): PreviewTaskList {
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const started = performance.now();
  let total: RecordTotal | undefined;
  let stopping: string | undefined;
  const ended = gate<PreviewEnd>();
  const progress = progressText(
    () =>
      stopping ??
      (counts.total === 0 && !total
        ? 'counting and reading the first page…'
        : formatProgress(counts, performance.now() - started, true, total)),
    // Drawn in place, the text follows the pages; where listr2 prints a line per change instead
    // (stdout is not a terminal), one every few seconds, as plain output does.
    process.stdout.isTTY && hasWidth() ? PAGE_REDRAW_MS : 5000,
  );
  const { output, done } = startList(
    [
      step(`checking ${title}`, async (task) => {
        progress.attach(task);
        const { interrupted, error } = await ended.promise;
        if (error !== undefined) throw error;
        const took = formatDuration(Math.round(performance.now() - started));
        if (interrupted) task.skip(`stopped checking ${title} after ${counts.total} record(s)`);
        else if (counts.failed > 0)
          throw new Outcome(`checked ${title}: ${counts.total} record(s) read in ${took}, ${counts.failed} failed`);
        else task.title = `checked ${title}: ${counts.total} record(s) read in ${took}`;
      }),
    ],
    process.stderr,
  );
  return {
    onTotal(t) {
      total = t;
    },
    onEvent(e) {
      tally(counts, e);
      return e.type === 'page' ? progress.page(e.index, done) : undefined;
    },
    onInterrupt(text) {
      stopping = text;
      progress.show();
    },
    abandon() {
      output.abandon();
    },
    async end(outcome) {
      ended.resolve(outcome);
      await done;
    },
  };
}

/** How a counted task ended, for `CountsTaskList.end`. */
export interface CountsEnd {
  /** The task's last line: what was done, in how long. */
  readonly line: string;
  /** `done` ✔; `failed` ✖ (records failed or drifted); `interrupted` ■; `error` ✖ with the error. */
  readonly outcome: 'done' | 'failed' | 'interrupted' | 'error';
}

/** A list of one task whose output is the counts so far (`apply` in a terminal). */
export interface CountsTaskList {
  /** The counts so far; drawn at most every PAGE_REDRAW_MS. */
  onProgress(text: string): void;
  /** A line above the list (a record line); it stays in the scrollback. */
  print(line: string): void;
  /** Leaves the task on screen with its outcome; resolves when listr2 gave the terminal back. */
  end(outcome: CountsEnd): Promise<void>;
}

/**
 * One listr2 task, `title`, on stdout, with the counts so far as its output, as `run`'s "Process
 * records" task: the command's record lines are printed above it; it ends ✔, ✖ or ■.
 */
export function countsTaskList(title: string): CountsTaskList {
  let text = 'reading the first records…';
  const ended = gate<CountsEnd>();
  const progress = progressText(() => text, PAGE_REDRAW_MS);
  const { output, done } = startList(
    [
      step(title, async (task) => {
        progress.attach(task);
        const refresh = setInterval(progress.show, REFRESH_MS);
        refresh.unref();
        let end: CountsEnd;
        try {
          end = await ended.promise;
        } finally {
          // Never after the task ended: listr2 refuses output for a finished task.
          clearInterval(refresh);
        }
        const { line, outcome } = end;
        if (outcome === 'interrupted') task.skip(line);
        else if (outcome !== 'done') throw new Outcome(line);
        else task.title = line;
      }),
    ],
    process.stdout,
  );
  let shown = 0;
  return {
    onProgress(next) {
      text = next;
      // The first counts at once, later ones at most every PAGE_REDRAW_MS.
      void progress.page(shown++, done);
    },
    print(line) {
      output.print(line.replace(/\n$/, ''));
    },
    async end(outcome) {
      ended.resolve(outcome);
      await done;
    },
  };
}
