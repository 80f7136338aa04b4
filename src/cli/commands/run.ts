import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { EXIT, reportError } from '../exit.js';

export class RunCommand extends Command {
  static override paths = [['run']];

  static override usage = Command.Usage({
    description: 'Run a fix: read the source, skip what the rules say, and write the guarded updates.',
    details: `
      Loads and validates SPEC, connects to its target, and processes every source record:
      lookups, extracts, skip rules in order, then a fill-only conditional update.

      Always start with \`--dry-run\`: it writes nothing, prints each proposed change as a
      field-level before → after diff, and its counts equal the live run's on unchanged data.

      Exit codes: 0 finished with no failed record; 1 some records failed; 2 invalid spec,
      configuration, connection or usage; 130 interrupted.
    `,
    examples: [
      ['Preview the changes, writing nothing', 'datafix run fixes/sync-media-generation-ids.yaml --dry-run'],
      ['Run against production settings from .env.prod', 'datafix run fixes/i2v-thumbnails.yaml --env prod'],
      ['Handle only the first 25 records', 'datafix run fixes/sync-media-generation-ids.yaml --limit 25'],
      ['Print the summary as JSON on stdout', 'datafix run fixes/i2v-thumbnails.yaml --dry-run --json'],
      ['Take segment 0 of 4 of a parallel scan', 'datafix run fix.yaml --segment 0 --total-segments 4'],
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

  override async execute(): Promise<number> {
    const stdout = this.context.stdout;
    const stderr = this.context.stderr;
    if ((this.segment === undefined) !== (this.totalSegments === undefined)) {
      stderr.write('error DF001: --segment and --total-segments go together\n');
      return EXIT.invalid;
    }
    if (this.segment !== undefined && this.totalSegments !== undefined && this.segment >= this.totalSegments) {
      stderr.write(`error DF001: --segment must be below --total-segments (${this.totalSegments})\n`);
      return EXIT.invalid;
    }
    const { runSpecFile } = await import('../../api.js');
    const { loadEnvFile } = await import('../../spec/env.js');
    const progress = await import('../progress.js');
    const out = this.json ? stderr : stdout;
    const reporterOptions = { specFile: this.spec, dryRun: this.dryRun, verbose: this.verbose, out, err: stderr };
    const reporter = progress.useTaskList(this.json)
      ? await progress.taskListReporter(reporterOptions)
      : progress.plainReporter(reporterOptions);

    const abort = new AbortController();
    const onSigint = () => {
      if (abort.signal.aborted) process.exit(EXIT.interrupted);
      stderr.write('\ninterrupt: finishing the records in flight (Ctrl-C again to stop at once)\n');
      abort.abort();
    };
    process.on('SIGINT', onSigint);
    try {
      if (this.env) {
        const names = loadEnvFile(this.env, process.cwd());
        stderr.write(`loaded .env.${this.env} (${names.length} variable(s) not already set)\n`);
      }
      let interrupted = false;
      const result = await runSpecFile(this.spec, {
        dryRun: this.dryRun,
        ...(this.limit !== undefined ? { limit: this.limit } : {}),
        ...(this.concurrency !== undefined ? { concurrency: this.concurrency } : {}),
        ...(this.segment !== undefined && this.totalSegments !== undefined
          ? { segment: { index: this.segment, total: this.totalSegments } }
          : {}),
        signal: abort.signal,
        onPlan: (plan) => reporter.onPlan(plan),
        onConnected: (target) => reporter.onConnected(target),
        onEvent: (e) => {
          if (e.type === 'done') interrupted = e.interrupted;
          reporter.onEvent(e);
        },
      });
      await reporter.end({ summary: result.summary, interrupted });
      if (this.json) stdout.write(`${JSON.stringify(result.summary)}\n`);
      if (interrupted) {
        stderr.write('interrupted: rerun the same command to continue; records already fixed are skipped\n');
        return EXIT.interrupted;
      }
      return result.summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      await reporter.end({ error: err });
      return reportError(err, stderr);
    } finally {
      process.off('SIGINT', onSigint);
    }
  }
}
