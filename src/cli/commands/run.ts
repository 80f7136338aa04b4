import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { DatafixError } from '../../errors.js';
import { cancelledJson, EXIT, reportError } from '../exit.js';

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

      Exit codes: 0 finished with no failed record; 1 some records failed; 2 invalid spec,
      configuration, connection or usage; 130 interrupted.
    `,
    examples: [
      ['Preview the changes, writing nothing', 'datafix run fixes/sync-media-generation-ids.yaml --dry-run'],
      ['Run against production settings from .env.prod', 'datafix run fixes/i2v-thumbnails.yaml --env prod'],
      ['Handle only the first 25 records', 'datafix run fixes/sync-media-generation-ids.yaml --limit 25'],
      ['Print the summary as JSON on stdout', 'datafix run fixes/i2v-thumbnails.yaml --dry-run --json'],
      ['Take segment 0 of 4 of a parallel scan', 'datafix run fix.yaml --segment 0 --total-segments 4'],
      ['Continue a run that was interrupted or killed', 'datafix run fixes/i2v-thumbnails.yaml --resume'],
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
      return reportError(new DatafixError('usage', 'DF023', '--segment and --total-segments go together'), stderr, json);
    }
    if (this.segment !== undefined && this.totalSegments !== undefined && this.segment >= this.totalSegments) {
      return reportError(
        new DatafixError('usage', 'DF023', `--segment must be below --total-segments (${this.totalSegments})`),
        stderr,
        json,
      );
    }
    const { loadPlan, runPlan } = await import('../../api.js');
    const { checkSegmentable, runPlanSafely } = await import('../../safety/session.js');
    const { describeTarget } = await import('../../adapters/registry.js');
    const progress = await import('../progress.js');
    const out = this.json ? stderr : stdout;

    const abort = new AbortController();
    const onSigint = () => {
      if (abort.signal.aborted) process.exit(EXIT.interrupted);
      stderr.write('\ninterrupt: finishing the records in flight and saving the checkpoint (Ctrl-C again to stop at once)\n');
      abort.abort();
    };
    process.on('SIGINT', onSigint);
    // The reader of the output went away (`| head`): stop like Ctrl-C, with a checkpoint and the
    // lock released, instead of writing on with nobody reading.
    const onGone = () => {
      if (!abort.signal.aborted) abort.abort();
    };
    stdout.on('error', onGone);
    let reporter: import('../progress.js').Reporter | undefined;
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
      const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;
      if (!this.dryRun && !this.yes && interactive && !this.resume) {
        // Show what the live run is about to do, and let the person say no.
        stderr.write(`checking what ${plan.fix} would change on ${describeTarget(plan.target)} …\n`);
        const preview = await runPlan(plan, { dryRun: true, ...limits, signal: abort.signal });
        const s = preview.summary;
        stderr.write(`${s.updated} record(s) would be updated, ${s.skipped} skipped, ${s.failed} failed (of ${s.total} read).\n`);
        if (s.updated === 0) {
          stderr.write('nothing to write.\n');
        } else if (!(await confirm(`Write these changes to ${describeTarget(plan.target)}? [y/N] `))) {
          stderr.write('cancelled: nothing was written.\n');
          json?.write(cancelledJson('cancelled: nothing was written', s));
          return EXIT.ok;
        }
      }
      const reporterOptions = { specFile: this.spec, dryRun: this.dryRun, verbose: this.verbose, out, err: stderr };
      reporter = progress.useTaskList(this.json)
        ? await progress.taskListReporter(reporterOptions)
        : progress.plainReporter(reporterOptions);
      const shown = reporter;
      shown.onPlan(plan);
      const result = await runPlanSafely(plan, {
        dryRun: this.dryRun,
        ...limits,
        signal: abort.signal,
        cwd: process.cwd(),
        specFile: this.spec,
        ...(this.journal ? { journalPath: this.journal } : {}),
        resume: this.resume,
        onNote: (text) => notes.push(text),
        onConnected: (target) => shown.onConnected(target),
        onEvent: (e) => shown.onEvent(e),
      });
      await shown.end({ summary: result.summary, interrupted: result.interrupted });
      for (const n of notes) stderr.write(`${n}\n`);
      if (this.json) stdout.write(`${JSON.stringify(result.summary)}\n`);
      if (result.interrupted) {
        stderr.write(`interrupted: the checkpoint is saved. Continue with: datafix run ${this.spec} --resume\n`);
        return EXIT.interrupted;
      }
      return result.summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      await reporter?.end({ error: err });
      for (const n of notes) stderr.write(`${n}\n`);
      const { locateInSpec } = await import('../../spec/locate.js');
      return reportError(locateInSpec(err, this.spec), stderr, json);
    } finally {
      process.off('SIGINT', onSigint);
      stdout.off('error', onGone);
    }
  }
}

async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
