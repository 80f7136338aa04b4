/**
 * Draws a run for a person. In a terminal: a listr2 task list (load and validate, connect,
 * process with live counts and rate, summary). Otherwise (pipes, CI, --json): plain lines.
 * This is the only module that imports listr2.
 */
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { redactText } from '../adapters/redact.js';
import type { EngineEvent, RunSummary } from '../engine/events.js';
import type { FixPlan } from '../plan/types.js';
import { formatDuration, formatProgress, formatRecord, formatSummary } from './format.js';

export interface ReporterOptions {
  readonly specFile: string;
  readonly dryRun: boolean;
  readonly verbose: boolean;
  /** Where record lines and the summary go (stderr under --json). */
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

export interface Reporter {
  onPlan(plan: FixPlan): void;
  onConnected(target: string): void;
  /**
   * Draws one event. For a `page` event it returns a promise when the output stream's buffer is
   * full; the engine waits for it, so a slow reader (`| less`) slows the run instead of letting
   * unwritten lines pile up in memory.
   */
  onEvent(event: EngineEvent): void | Promise<void>;
  /** The run ended (normally or not); waits for the display to settle. */
  end(result: { summary?: RunSummary; interrupted?: boolean; error?: unknown }): Promise<void>;
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

/** Whether to draw with listr2: a real terminal, not CI, and stdout not claimed by --json. */
export function useTaskList(json: boolean): boolean {
  return !json && Boolean(process.stdout.isTTY) && !process.env.CI && process.env.TERM !== 'dumb';
}

export function plainReporter(o: ReporterOptions): Reporter {
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const started = performance.now();
  let lastProgress = started;
  const out = backpressured(o.out);
  return {
    onPlan(plan) {
      o.err.write(`datafix ${plan.fix}${o.dryRun ? ' (dry run: nothing will be written)' : ''}\n  spec    ${o.specFile}\n`);
    },
    onConnected(target) {
      o.err.write(`  target  ${target}\n`);
    },
    onEvent(e) {
      tally(counts, e);
      if (e.type === 'record') {
        const line = formatRecord(e, o.dryRun, o.verbose);
        if (line) out.write(`${line}\n`);
      } else if (e.type === 'throttled') {
        o.err.write(`  throttled: requeued ${e.records} write(s), concurrency now ${e.concurrency}, waiting ${e.waitMs} ms\n`);
      } else if (e.type === 'page') {
        const now = performance.now();
        // A progress line every few seconds keeps CI logs readable on long runs.
        if (o.verbose || now - lastProgress > 5000) {
          lastProgress = now;
          o.err.write(`  … ${formatProgress(counts, now - started, o.dryRun)}\n`);
        }
        return out.room();
      }
      return undefined;
    },
    async end({ summary, interrupted }) {
      if (summary) o.out.write(`${formatSummary(summary, interrupted)}\n`);
    },
  };
}

export async function taskListReporter(o: ReporterOptions): Promise<Reporter> {
  const { Listr } = await import('listr2');
  const counts: Counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const started = performance.now();
  // Record lines would tear the live task list apart; they are spooled to a temporary file and
  // printed once the list is done, so memory stays flat however many records change.
  const spoolDir = mkdtempSync(join(tmpdir(), 'datafix-'));
  const spoolPath = join(spoolDir, 'records.txt');
  const spool = openSync(spoolPath, 'w');
  let spooled = 0;

  const gate = <T>() => {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    return { promise, resolve, reject };
  };
  const loaded = gate<FixPlan>();
  const connected = gate<string>();
  const processed = gate<{ summary: RunSummary; interrupted: boolean }>();
  let setOutput: (text: string) => void = () => {};

  const list = new Listr(
    [
      {
        title: `Load and validate ${o.specFile}`,
        task: async (_ctx, task) => {
          const plan = await loaded.promise;
          task.title = `Loaded ${plan.fix}: ${plan.lookups.length} lookup(s), ${plan.skip.length} skip rule(s)`;
        },
      },
      {
        title: 'Connect',
        task: async (_ctx, task) => {
          task.title = `Connected to ${await connected.promise}`;
        },
      },
      {
        title: o.dryRun ? 'Process records (dry run: nothing is written)' : 'Process records',
        task: async (_ctx, task) => {
          setOutput = (text) => {
            task.output = text;
          };
          const { summary, interrupted } = await processed.promise;
          task.title = `${interrupted ? 'Interrupted after' : 'Processed'} ${summary.total} record(s) in ${formatDuration(summary.durationMs)}`;
        },
        rendererOptions: { bottomBar: 1 },
      },
      {
        title: 'Summary',
        task: async (_ctx, task) => {
          const { summary } = await processed.promise;
          const reasons = Object.entries(summary.reasons).map(([r, n]) => `${r} ${n}`);
          task.title = `${summary.updated} ${o.dryRun ? 'would update' : 'updated'} · ${summary.skipped} skipped · ${summary.failed} failed${reasons.length ? ` (${reasons.join(', ')})` : ''}`;
        },
      },
    ],
    { concurrent: false, exitOnError: true, rendererOptions: { collapseErrors: false } },
  );
  const rendering = list.run().catch(() => undefined);
  let lastDraw = 0;

  return {
    onPlan: (plan) => loaded.resolve(plan),
    onConnected: (target) => connected.resolve(target),
    onEvent(e) {
      tally(counts, e);
      if (e.type === 'record') {
        const line = formatRecord(e, o.dryRun, o.verbose);
        if (line) {
          writeSync(spool, `${line}\n`);
          spooled++;
        }
      }
      const now = performance.now();
      if (now - lastDraw > 100 || e.type === 'done') {
        lastDraw = now;
        setOutput(formatProgress(counts, now - started, o.dryRun));
      }
    },
    async end({ summary, interrupted, error }) {
      if (summary) processed.resolve({ summary, interrupted: interrupted ?? false });
      else {
        // The task list prints this message on the failed task's line: never with credentials.
        const failure = new Error(redactText(error instanceof Error ? error.message : String(error ?? 'stopped')));
        loaded.reject(failure);
        connected.reject(failure);
        processed.reject(failure);
      }
      await rendering;
      closeSync(spool);
      if (spooled > 0) {
        const out = backpressured(o.out);
        for await (const chunk of createReadStream(spoolPath)) {
          out.write(chunk as Buffer);
          await out.room();
        }
      }
      rmSync(spoolDir, { recursive: true, force: true });
      if (summary) o.out.write(`${formatSummary(summary, interrupted)}\n`);
    },
  };
}
