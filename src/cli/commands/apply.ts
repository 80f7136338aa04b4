import { Command, Option } from 'clipanion';
import { cancelledJson, EXIT, reportError } from '../exit.js';

export class ApplyCommand extends Command {
  static override paths = [['apply']];

  static override usage = Command.Usage({
    description: 'Write exactly the changes of a saved plan, where each record still matches it.',
    details: `
      Each planned record is written only if every field it changes still holds its planned
      before-image; a record that drifted since the plan was made is reported and left as it is.
      The spec must be unchanged and must still point at the plan's target (load the same
      environment as for \`datafix plan\`). A live apply is journaled like a run (\`datafix undo\`).

      In a terminal a live apply first checks which records still match, shows the counts and the
      target, and asks before writing (\`--yes\` skips the question; without a terminal it never
      asks).

      Exit 0 when every record was applied (or the question was answered no); 1 when some
      drifted or failed; 2 when the plan is refused (other target, changed spec) or cannot be
      read; 130 on Ctrl-C (SIGTERM, SIGHUP): at the question nothing is written; during the
      writes the batch in flight finishes and is journaled, and running the apply again continues
      (records already applied are left as they are).
    `,
    examples: [
      ['Apply a reviewed plan', 'datafix apply i2v.plan.jsonl --env prod'],
      ['Apply without being asked (a script in a terminal)', 'datafix apply i2v.plan.jsonl --env prod --yes'],
    ],
  });

  plan = Option.String({ name: 'PLAN' });
  env = Option.String('--env', { description: 'Load .env.NAME from the working directory first' });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Write nothing; report which records still match the plan' });
  journal = Option.String('--journal', { description: 'Write the undo journal here' });
  json = Option.Boolean('--json', false, { description: 'Print the summary as one JSON object on stdout' });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask for confirmation before a live apply in a terminal' });

  override async execute(): Promise<number> {
    const out = this.json ? this.context.stderr : this.context.stdout;
    const stderr = this.context.stderr;
    // Ctrl-C, SIGTERM and SIGHUP are this command's from its start: it never dies with the lock
    // held and no summary. See `stopOnSignals`.
    const stop = (await import('../stop.js')).stopOnSignals(stderr);
    const nothingWritten = () => {
      stderr.write('interrupted: nothing was written.\n');
      if (this.json) this.context.stdout.write(`${JSON.stringify({ interrupted: { message: 'interrupted: nothing was written' } })}\n`);
      return EXIT.interrupted;
    };
    try {
      const { loadPlan } = await import('../../api.js');
      const { applySavedPlan, planScope, readPlanHeader } = await import('../../safety/saved-plan.js');
      const { formatApplyProgress, formatDuration, formatKey, summaryHeading } = await import('../format.js');
      const { boundedRecordLines } = await import('../progress.js');
      await (await import('../env.js')).loadEnvOption(this.env, stderr);
      const header = await readPlanHeader(this.plan);
      const current = loadPlan(header.specFile);
      const options = {
        cwd: process.cwd(),
        currentTarget: current.target,
        currentChecksum: current.specChecksum,
        scope: planScope(current),
        signal: stop.signal,
        // Requests to DynamoDB still unanswered shortly after the stop signal are cut off.
        adapter: { dynamodb: { stopSignal: stop.signal } },
      };
      if (!this.dryRun && !this.yes) {
        const { confirm, declined, isInteractive } = await import('../confirm.js');
        if (isInteractive()) {
          // Show what the apply is about to do, and let the person say no.
          const { describeTarget } = await import('../../adapters/registry.js');
          const where = describeTarget(current.target);
          stderr.write(`checking which records of ${this.plan} still match on ${where} …\n`);
          const preview = await applySavedPlan(this.plan, { ...options, dryRun: true });
          // Partial counts are no basis for a decision: an interrupted check asks nothing.
          if (preview.interrupted || stop.signal.aborted) return nothingWritten();
          stderr.write(
            `${preview.applied} record(s) would be applied, ${preview.drifted} drifted, ${preview.failed} failed (of ${preview.total} planned).\n`,
          );
          const no =
            preview.applied === 0 ? undefined : declined(await confirm(`Apply these changes to ${where}? [y/N] `, { signal: stop.signal }));
          if (no) {
            stderr.write(`${no.message}.\n`);
            if (this.json) this.context.stdout.write(cancelledJson(no.message, preview));
            return no.exit;
          }
        }
      }
      if (stop.signal.aborted) return nothingWritten();
      if (!this.dryRun) {
        stop.writing(
          `the writes in flight were sent and may have landed; the journal holds each of them, and the lock is left as after a crash. Clear it with datafix unlock ${header.specFile}${this.env ? ` --env ${this.env}` : ''}, then run datafix apply ${this.plan} again (records already applied are left as they are) or undo the journal`,
        );
      }
      const notes: string[] = [];
      // In a terminal, a task list as run's: the record lines above it, the counts as its output.
      const list = (await import('../progress.js')).useTaskList(this.json)
        ? (await import('../task-list.js')).countsTaskList(`${this.dryRun ? 'Checking' : 'Applying'} ${this.plan}`)
        : undefined;
      // A slow reader of the record lines slows the apply instead of filling memory.
      const lines = boundedRecordLines(out, list ? (text) => list.print(text) : undefined);
      const tally = { handled: 0, applied: 0, drifted: 0, failed: 0 };
      let planned: number | undefined;
      const started = performance.now();
      let summary: Awaited<ReturnType<typeof applySavedPlan>>;
      try {
        summary = await applySavedPlan(this.plan, {
          ...options,
          dryRun: this.dryRun,
          ...(this.journal ? { journalPath: this.journal } : {}),
          onNote: (n) => notes.push(n),
          onTotal: (n) => {
            planned = n;
          },
          onEvent: (e) => {
            tally.handled++;
            tally[e.outcome]++;
            list?.onProgress(formatApplyProgress(tally, planned, performance.now() - started, this.dryRun));
            const mark = { applied: this.dryRun ? '~ would apply' : '~ applied', drifted: '! drifted', failed: '✗ failed' }[e.outcome];
            return lines.write(
              e.outcome,
              `${mark} ${e.table ? `${e.table} ` : ''}${formatKey(e.key)}${e.message ? ` (${e.message})` : ''}\n`,
            );
          },
        });
      } catch (err) {
        await list?.end({
          line: `${this.dryRun ? 'Checking' : 'Applying'} ${this.plan} stopped: ${tally.handled} record(s) handled`,
          outcome: 'error',
        });
        throw err;
      }
      await list?.end({
        line: `${summary.interrupted ? 'Interrupted after' : this.dryRun ? 'Checked' : 'Applied'} ${summary.total} record(s) of ${this.plan} in ${formatDuration(summary.durationMs)}${summary.drifted + summary.failed > 0 ? `: ${summary.drifted} drifted, ${summary.failed} failed` : ''}`,
        outcome: summary.interrupted ? 'interrupted' : summary.drifted + summary.failed > 0 ? 'failed' : 'done',
      });
      const closing = lines.closing();
      if (closing) out.write(`${closing}\n`);
      out.write(
        `${summaryHeading('Apply', { dryRun: this.dryRun, interrupted: summary.interrupted })}\n  total    ${summary.total}\n  applied  ${summary.applied}\n  drifted  ${summary.drifted}\n  failed   ${summary.failed}\n`,
      );
      for (const n of notes) stderr.write(`${n}\n`);
      if (this.json) this.context.stdout.write(`${JSON.stringify(summary)}\n`);
      if (summary.interrupted) {
        stderr.write(
          this.dryRun
            ? `interrupted: ${summary.total} of ${summary.planned} planned record(s) were checked; a dry run writes nothing.\n`
            : `interrupted: ${summary.total} of ${summary.planned} planned record(s) were handled and journaled. Continue with: datafix apply ${this.plan}${this.env ? ` --env ${this.env}` : ''} (records already applied are left as they are and reported as drifted)\n`,
        );
        return EXIT.interrupted;
      }
      return summary.drifted > 0 || summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      return reportError(err, stderr, this.json ? this.context.stdout : undefined);
    } finally {
      stop.dispose();
    }
  }
}
