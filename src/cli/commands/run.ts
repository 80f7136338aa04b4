import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { DatafixError } from '../../errors.js';
import { cancelledJson, EXIT, reportError, STOP_SIGNALS, stopEcho } from '../exit.js';

export class RunCommand extends Command {
  static override paths = [['run']];

  static override usage = Command.Usage({
    description: 'Run a fix: read the source, skip what the rules say, and write the guarded updates.',
    details: `
      Loads and validates SPEC, connects to its target, and processes every source record:
      lookups, extracts, skip rules in order, then a fill-only conditional update.

      Always start with \`--dry-run\`: it writes nothing, prints each proposed change as a
      field-level before → after diff, and its counts equal the live run's on unchanged data.

      A live run journals the before-image of every field it writes (\`datafix undo JOURNAL\`
      restores them), takes the target's lock so that no two processes write it at once, and saves a
      checkpoint after every page: after Ctrl-C or a crash, \`--resume\` continues from it. In a
      terminal it first shows the counts and asks before writing (\`--yes\` skips the question).
      Ctrl-C in that preview or at the question writes nothing; a second Ctrl-C stops at once.

      In a terminal the progress shows the total, a percentage and an ETA, and only the first 20
      changed and failed records are printed; \`--diff-file\` writes every one as JSON Lines.

      Exit codes: 0 finished with no failed record; 1 some records failed; 2 invalid spec,
      configuration, connection or usage; 3 internal error (a bug in datafix); 130 interrupted.
    `,
    examples: [
      ['Preview the changes, writing nothing', 'datafix run fixes/sync-media-generation-ids.yaml --dry-run'],
      ['Run against production settings from .env.prod', 'datafix run fixes/i2v-thumbnails.yaml --env prod'],
      ['Handle only the first 25 records', 'datafix run fixes/sync-media-generation-ids.yaml --limit 25'],
      ['Print the summary as JSON on stdout', 'datafix run fixes/i2v-thumbnails.yaml --dry-run --json'],
      ['Take segment 0 of 4 of a parallel scan', 'datafix run fix.yaml --segment 0 --total-segments 4'],
      ['Continue a run that was interrupted or killed', 'datafix run fixes/i2v-thumbnails.yaml --resume'],
      ['Review every proposed change in a file', 'datafix run fixes/i2v-thumbnails.yaml --dry-run --diff-file changes.jsonl'],
      ['Print only the progress counts and the summary', 'datafix run fixes/i2v-thumbnails.yaml --quiet'],
      ['Undo a live run from its journal', 'datafix undo .datafix/runs/<run>.journal.jsonl'],
    ],
  });

  spec = Option.String({ name: 'SPEC' });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Write nothing; print every proposed change and the counts' });
  env = Option.String('--env', { description: 'Load .env.NAME from the working directory (never overrides variables already set)' });
  limit = Option.String('--limit', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]),
    description: 'Stop after N source records',
  });
  concurrency = Option.String('--concurrency', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]),
    description: 'Writes in flight at once (overrides run.concurrency)',
  });
  segment = Option.String('--segment', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)]),
    description: 'DynamoDB scan: the segment this process reads (0-based)',
  });
  totalSegments = Option.String('--total-segments', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]),
    description: 'DynamoDB scan: how many segments all processes split the table into',
  });
  json = Option.Boolean('--json', false, {
    description: 'Print only the summary as one JSON object on stdout; everything else goes to stderr',
  });
  verbose = Option.Boolean('--verbose', false, { description: 'Also print skipped records and a progress line per page' });
  quiet = Option.Boolean('--quiet,-q', false, { description: 'Print no record lines: only the progress counts and the summary' });
  diffFile = Option.String('--diff-file', {
    description: 'Write every record line to PATH as JSON Lines (one object per record) instead of printing it',
  });
  journal = Option.String('--journal', { description: 'Write the undo journal here (default: .datafix/runs/…journal.jsonl)' });
  resume = Option.Boolean('--resume', false, {
    description: 'Continue the last interrupted run of this fix on this target from its checkpoint',
  });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask for confirmation before a live run in a terminal' });

  override async execute(): Promise<number> {
    const stdout = this.context.stdout;
    const stderr = this.context.stderr;
    const json = this.json ? stdout : undefined;
    if ((this.segment === undefined) !== (this.totalSegments === undefined)) {
      return reportError(new DatafixError('usage', 'DF723', '--segment and --total-segments go together'), stderr, json);
    }
    if (this.segment !== undefined && this.totalSegments !== undefined && this.segment >= this.totalSegments) {
      return reportError(
        new DatafixError('usage', 'DF723', `--segment must be below --total-segments (${this.totalSegments})`),
        stderr,
        json,
      );
    }
    if (this.quiet && this.verbose) {
      return reportError(
        new DatafixError('usage', 'DF023', '--quiet prints no record lines and --verbose prints more of them: give one of the two'),
        stderr,
        json,
      );
    }

    // Ctrl-C is this command's from its first moment (the listr2 task lists are made without
    // listr2's own SIGINT handler, which exits 127). A first one stops at the next safe point:
    // the preview or the question with nothing written, a live run after the records in flight
    // with its checkpoint saved. A second one stops at once, leaving what a crash leaves: a state
    // `--resume` continues.
    const abort = new AbortController();
    let phase: 'prepare' | 'preview' | 'question' | 'run' = 'prepare';
    let reporter: import('../progress.js').Reporter | undefined;
    let preview: import('../task-list.js').PreviewTaskList | undefined;
    const live = !this.dryRun;
    /** Whether the run holds its target's lock now: only then does stopping at once leave it. */
    let holdsLock = () => false;
    /** The first stop signal delivered again (GNU timeout signals the process group too) is no second stop. */
    const stops = stopEcho();
    const onSigint = () => {
      if (abort.signal.aborted && stops.echo()) return;
      if (abort.signal.aborted) {
        try {
          reporter?.abandon();
          preview?.abandon();
        } catch {
          // Stopping at once: a diff file the disk cannot finish is no reason to stay.
        }
        stderr.write(
          phase === 'run' && live && holdsLock()
            ? `\nstopped at once. The run can be continued from its last checkpoint with: datafix run ${this.spec}${this.env ? ` --env ${this.env}` : ''} --resume (its lock is left as after a crash; --resume takes it over)\n`
            : '\nstopped at once: nothing was written.\n',
        );
        process.exit(EXIT.interrupted);
      }
      stops.first();
      abort.abort();
      if (phase === 'question') return; // the question itself says what happened
      const text =
        phase === 'run' && live
          ? 'interrupt: finishing the records in flight and saving the checkpoint (Ctrl-C again to stop at once)'
          : phase === 'run'
            ? 'interrupt: stopping after the records in flight (Ctrl-C again to stop at once)'
            : 'interrupt: stopping before anything is written (Ctrl-C again to stop at once)';
      if (reporter) reporter.onInterrupt(text);
      else if (preview) preview.onInterrupt(text);
      else stderr.write(`\n${text}\n`);
    };
    // SIGTERM (a scheduler or `docker stop`) and SIGHUP (the terminal closed) stop the run the
    // same way: the records in flight finish and the checkpoint is saved, so --resume continues.
    for (const signal of STOP_SIGNALS) process.on(signal, onSigint);
    const nothingWritten = () => {
      stderr.write('interrupted: nothing was written.\n');
      // --json promises one object on stdout, whatever ends the command.
      json?.write(`${JSON.stringify({ interrupted: { message: 'interrupted: nothing was written' } })}\n`);
      return EXIT.interrupted;
    };
    const { loadPlan, runPlan } = await import('../../api.js');
    const { checkSegmentable, runPlanSafely } = await import('../../safety/session.js');
    const { describeTarget } = await import('../../adapters/registry.js');
    const progress = await import('../progress.js');
    const { DiffFile, checkDiffFile } = await import('../diff-file.js');
    const { heldByThisProcess } = await import('../../safety/lock.js');
    // Requests to DynamoDB still unanswered shortly after the first stop signal are cut off.
    const adapter = { dynamodb: { stopSignal: abort.signal } };
    const out = this.json ? stderr : stdout;

    // The reader of the output went away (`| head`): stop like Ctrl-C, with a checkpoint and the
    // lock released, instead of writing on with nobody reading.
    const onGone = () => {
      if (!abort.signal.aborted) abort.abort();
    };
    stdout.on('error', onGone);
    let diffFile: import('../diff-file.js').DiffFile | undefined;
    /** The diff file's write error (DF747), which stopped the run after its page in flight. */
    let diffFailed: DatafixError | undefined;
    // Notes (the journal's path and how to undo it) are printed after the run, also when it stops
    // with an error: what it wrote by then is in that journal.
    const notes: string[] = [];
    try {
      await (await import('../env.js')).loadEnvOption(this.env, stderr);
      const plan = loadPlan(this.spec);
      const limits = {
        ...(this.limit !== undefined ? { limit: this.limit } : {}),
        ...(this.concurrency !== undefined ? { concurrency: this.concurrency } : {}),
        ...(this.segment !== undefined && this.totalSegments !== undefined
          ? { segment: { index: this.segment, total: this.totalSegments } }
          : {}),
      };
      // Refused before the confirmation's dry pass: no preview of a run that cannot start.
      checkSegmentable(plan, limits.segment);
      holdsLock = () => heldByThisProcess(plan.target, limits.segment);
      if (this.diffFile) checkDiffFile(this.diffFile, process.cwd(), plan.target);
      if (abort.signal.aborted) return nothingWritten();
      const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;
      /** What the preview pass read: the live run's total, exact as of a moment ago. */
      let previewed: number | undefined;
      if (live && !this.yes && interactive && !this.resume) {
        // Show what the live run is about to do, and let the person say no.
        phase = 'preview';
        const title = `what ${plan.fix} would change on ${describeTarget(plan.target)}`;
        const shown = (await import('../task-list.js')).previewTaskList(title);
        preview = shown;
        let checked: Awaited<ReturnType<typeof runPlan>>;
        try {
          checked = await runPlan(plan, {
            dryRun: true,
            ...limits,
            signal: abort.signal,
            adapter,
            onTotal: (t) => shown.onTotal(t),
            onEvent: (e) => shown.onEvent(e),
          });
          await shown.end({ interrupted: abort.signal.aborted });
        } catch (err) {
          await shown.end({ interrupted: false, error: err });
          throw err;
        } finally {
          // Only now: until listr2 gave the terminal back, a second Ctrl-C stops its drawing first.
          preview = undefined;
        }
        // Partial counts are no basis for a decision: an interrupted preview asks nothing.
        if (checked.interrupted) return nothingWritten();
        const s = checked.summary;
        previewed = s.total;
        stderr.write(`${s.updated} record(s) would be updated, ${s.skipped} skipped, ${s.failed} failed (of ${s.total} read).\n`);
        if (s.updated === 0) {
          stderr.write('nothing to write.\n');
        } else {
          phase = 'question';
          const { confirm, declined } = await import('../confirm.js');
          const answer = await confirm(`Write these changes to ${describeTarget(plan.target)}? [y/N] `, {
            signal: abort.signal,
            onInterrupt: onSigint,
          });
          if (answer === 'interrupted') return nothingWritten();
          const no = declined(answer);
          if (no) {
            stderr.write(`${no.message}.\n`);
            json?.write(cancelledJson(no.message, s));
            return no.exit;
          }
        }
      }
      if (abort.signal.aborted) return nothingWritten();
      phase = 'run';
      if (this.diffFile) diffFile = DiffFile.open(this.diffFile, process.cwd(), plan, this.dryRun, { resume: this.resume });
      const reporterOptions = {
        specFile: this.spec,
        dryRun: this.dryRun,
        verbose: this.verbose,
        quiet: this.quiet,
        ...(diffFile ? { diffFile } : {}),
        out,
        err: stderr,
      };
      reporter = progress.useTaskList(this.json)
        ? (await import('../task-list.js')).taskListReporter(reporterOptions)
        : progress.plainReporter(reporterOptions);
      const shown = reporter;
      shown.onPlan(plan);
      if (previewed !== undefined) shown.onTotal({ records: previewed, estimate: false });
      const result = await runPlanSafely(plan, {
        dryRun: this.dryRun,
        ...limits,
        signal: abort.signal,
        adapter,
        cwd: process.cwd(),
        specFile: this.spec,
        ...(this.journal ? { journalPath: this.journal } : {}),
        resume: this.resume,
        onNote: (text) => notes.push(text),
        onResume: (part) => shown.onResume(part),
        onConnected: (target) => shown.onConnected(target),
        ...(previewed === undefined ? { onTotal: (t: import('../format.js').RecordTotal) => shown.onTotal(t) } : {}),
        onEvent: (e) => {
          if (diffFailed) return undefined;
          try {
            return shown.onEvent(e);
          } catch (err) {
            if (!(err instanceof DatafixError && err.code === 'DF747')) throw err;
            // The disk refused the diff file: stop as on Ctrl-C, after the page in flight and
            // with its checkpoint saved, so that the state, the target and --resume agree.
            diffFailed = err;
            if (!abort.signal.aborted) abort.abort();
            return undefined;
          }
        },
      });
      await shown.end({
        summary: result.summary,
        interrupted: result.interrupted,
        ...(result.journal ? { journal: result.journal } : {}),
        ...(result.resumed ? { earlier: result.resumed } : {}),
      });
      for (const n of notes) stderr.write(`${n}\n`);
      // A resumed run's object also says what it continued and the whole run's totals.
      // An interrupted run's summary says so: its counts are of a part of the source.
      const summaryJson = {
        ...result.summary,
        ...(result.interrupted ? { interrupted: true } : {}),
        ...(result.resumed ? { resumed: result.resumed, wholeRun: result.wholeRun } : {}),
      };
      if (diffFailed) {
        stderr.write(
          `the checkpoint is saved: once the diff file can be written, continue with: datafix run ${this.spec}${this.env ? ` --env ${this.env}` : ''} --resume --diff-file ${this.diffFile}\n`,
        );
        return reportError(diffFailed, stderr, json);
      }
      if (this.json) stdout.write(`${JSON.stringify(summaryJson)}\n`);
      if (result.interrupted) {
        stderr.write(
          this.dryRun
            ? 'interrupted: a dry run writes nothing; run it again to see every record.\n'
            : `interrupted: the checkpoint is saved. Continue with: datafix run ${this.spec}${this.env ? ` --env ${this.env}` : ''} --resume\n`,
        );
        return EXIT.interrupted;
      }
      return result.summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      try {
        await reporter?.end({ error: err });
      } catch {
        // The run's own error is the one to report.
      }
      diffFile?.close();
      for (const n of notes) stderr.write(`${n}\n`);
      // A wait the stop signal ended before the first page (connecting, checking the table,
      // counting; a request cut off, a locked database): the run had written nothing yet.
      const { stoppedWhileWaiting } = await import('../../engine/run.js');
      if (await stoppedWhileWaiting(err, abort.signal)) return nothingWritten();
      const { locateInSpec } = await import('../../language/locate.js');
      return reportError(locateInSpec(err, this.spec), stderr, json);
    } finally {
      for (const signal of STOP_SIGNALS) process.off(signal, onSigint);
      stdout.off('error', onGone);
    }
  }
}
