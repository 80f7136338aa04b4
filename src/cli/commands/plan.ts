import { dirname, resolve } from 'node:path';
import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { DatafixError } from '../../errors.js';
import { EXIT, reportError } from '../exit.js';

export class PlanCommand extends Command {
  static override paths = [['plan']];

  static override usage = Command.Usage({
    description: 'Save the record-level plan of a fix for review, to apply later with datafix apply.',
    details: `
      Runs the fix as a dry run and writes to --out, one JSON line per record that would change:
      its key, and every field's before and after, plus the skip counts. The plan records the
      spec's checksum and the target, so \`datafix apply\` refuses it anywhere else or after the
      spec changed. \`--format markdown\` prints, instead of the summary, a pull-request comment:
      the target (without credentials), counts per outcome and reason, the first
      records of each with their diffs, the spec's checksum and how to apply the plan.
    `,
    examples: [
      ['Plan, review, apply', 'datafix plan fixes/i2v-thumbnails.yaml --env prod --out i2v.plan.jsonl'],
      ['A pull-request comment of the plan', 'datafix plan fixes/i2v-thumbnails.yaml --out i2v.plan.jsonl --format markdown > plan.md'],
    ],
  });

  spec = Option.String({ name: 'SPEC' });
  out = Option.String('--out', { required: true, description: 'The plan file to write' });
  env = Option.String('--env', { description: 'Load .env.NAME from the working directory first' });
  limit = Option.String('--limit', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]),
    description: 'Plan only the first N source records',
  });
  json = Option.Boolean('--json', false, { description: 'Print the summary as one JSON object on stdout' });
  format = Option.String('--format', 'text', {
    validator: t.isEnum(['text', 'markdown'] as const),
    description: 'text (default), or markdown: a pull-request comment on stdout',
  });

  override async execute(): Promise<number> {
    // Ctrl-C, SIGTERM and SIGHUP stop the plan after the records in flight; no plan is saved.
    const stop = (await import('../stop.js')).stopOnSignals(this.context.stderr);
    // Loaded with the command, not with the CLI: every command module stays light at start-up.
    const { PlanInterrupted } = await import('../../safety/saved-plan.js');
    try {
      const { loadPlan } = await import('../../api.js');
      const { writeSavedPlan } = await import('../../safety/saved-plan.js');
      const { formatSummary } = await import('../format.js');
      const markdown = this.format === 'markdown';
      if (markdown && this.json) {
        throw new DatafixError('usage', 'DF735', '--json and --format markdown both print on stdout; choose one');
      }
      await (await import('../env.js')).loadEnvOption(this.env, this.context.stderr);
      const plan = loadPlan(this.spec);
      // A plan file is only started once the target is known to fit, so a failure leaves none.
      const { checkTarget, sqliteSideFile, whyNotCreatable } = await import('../../safety/preflight.js');
      const outDir = dirname(resolve(this.out));
      const why = whyNotCreatable(outDir);
      if (why)
        throw new DatafixError('usage', 'DF741', `cannot write the plan ${this.out}: ${why}. Give --out a path in a writable directory`);
      // A new plan replaces an earlier plan, never anything else: not the database, a journal,
      // the spec or any other file that happens to be at that path.
      const side = sqliteSideFile(plan.target, resolve(this.out));
      if (side) throw new DatafixError('usage', 'DF741', `cannot write the plan ${this.out}: ${side}. Give --out another file`);
      const { isOccupied, isPlanFile } = await import('../../safety/saved-plan.js');
      if (isOccupied(this.out) && !isPlanFile(this.out)) {
        throw new DatafixError(
          'usage',
          'DF741',
          `cannot write the plan ${this.out}: it exists and is not a datafix plan, so it is never overwritten. Give --out a new file (or an earlier plan's)`,
        );
      }
      // DynamoDB requests still unanswered shortly after a stop signal are cut off, as run's are.
      const adapter = { dynamodb: { stopSignal: stop.signal } };
      await checkTarget(plan, { readonly: true, adapter });
      if (stop.signal.aborted) throw new PlanInterrupted();
      const { PlanDigest, renderPlanMarkdown } = await import('../plan-markdown.js');
      const digest = new PlanDigest();
      const out = this.json || markdown ? this.context.stderr : this.context.stdout;
      // In a terminal, the same task list as run's: loading, connecting, and the records read
      // with the total, percentage and ETA. It prints the summary when it ends.
      const { useTaskList } = await import('../progress.js');
      const shown =
        !markdown && useTaskList(this.json)
          ? (await import('../task-list.js')).taskListReporter({
              specFile: this.spec,
              dryRun: true,
              verbose: false,
              quiet: true,
              out,
              err: this.context.stderr,
            })
          : undefined;
      shown?.onPlan(plan);
      let summary: Awaited<ReturnType<typeof writeSavedPlan>>;
      try {
        summary = await writeSavedPlan(plan, this.spec, this.out, {
          signal: stop.signal,
          adapter,
          ...(this.limit !== undefined ? { limit: this.limit } : {}),
          ...(shown ? { onConnected: (t: string) => shown.onConnected(t), onTotal: (t) => shown.onTotal(t) } : {}),
          ...(markdown || shown
            ? {
                onEvent: (e) => {
                  if (markdown) digest.take(e);
                  return shown?.onEvent(e);
                },
              }
            : {}),
        });
      } catch (err) {
        await shown?.end(err instanceof PlanInterrupted ? { interrupted: true } : { error: err });
        throw err;
      }
      await shown?.end({ summary });
      out.write(
        `${shown ? '' : `${formatSummary(summary)}\n`}plan written to ${this.out}: ${summary.updated} change(s). Apply with: datafix apply ${this.out}${this.env ? ` --env ${this.env}` : ''}\n`,
      );
      if (this.json) this.context.stdout.write(`${JSON.stringify(summary)}\n`);
      if (markdown) {
        const env = this.env !== undefined ? { env: this.env } : {};
        this.context.stdout.write(renderPlanMarkdown({ plan, specFile: this.spec, out: this.out, summary, digest, ...env }));
      }
      // As its dry run: records that failed are in no plan, and the exit code says so.
      return summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      // Stopped, or a wait the stop signal cut short, before any record was planned.
      const { stoppedWhileWaiting } = await import('../../engine/run.js');
      if (err instanceof PlanInterrupted || (await stoppedWhileWaiting(err, stop.signal))) return this.noPlan();
      const { locateInSpec } = await import('../../language/locate.js');
      return reportError(locateInSpec(err, this.spec), this.context.stderr, this.json ? this.context.stdout : undefined);
    } finally {
      stop.dispose();
    }
  }

  /** What an interrupted plan says: nothing was written, and no plan file either. */
  private noPlan(): number {
    this.context.stderr.write(`interrupted: nothing was written.\nno plan was saved: ${this.out} was not written.\n`);
    // The one object every interrupted command prints under --json.
    if (this.json) this.context.stdout.write(`${JSON.stringify({ interrupted: { message: 'interrupted: nothing was written' } })}\n`);
    return EXIT.interrupted;
  }
}
