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
      read; 130 on Ctrl-C at the question.
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
    try {
      const { loadPlan } = await import('../../api.js');
      const { applySavedPlan, readPlanHeader } = await import('../../safety/saved-plan.js');
      const { formatKey } = await import('../format.js');
      const { boundedRecordLines } = await import('../progress.js');
      await (await import('../env.js')).loadEnvOption(this.env, this.context.stderr);
      const header = await readPlanHeader(this.plan);
      const current = loadPlan(header.specFile);
      const options = {
        cwd: process.cwd(),
        currentTarget: current.target,
        currentChecksum: current.specChecksum,
        scope: {
          ...(current.update.table !== undefined ? { table: current.update.table } : {}),
          set: current.update.set.map((f) => ({ field: f.field, overwrite: f.overwrite })),
          touch: current.update.touch.map((f) => f.field),
          ...(current.update.action ? { action: current.update.action } : {}),
          key: current.update.key.map(([k]) => k),
          ...(current.update.remove ? { remove: current.update.remove } : {}),
        },
      };
      if (!this.dryRun && !this.yes) {
        const { confirm, declined, isInteractive } = await import('../confirm.js');
        if (isInteractive()) {
          // Show what the apply is about to do, and let the person say no.
          const { describeTarget } = await import('../../adapters/registry.js');
          const where = describeTarget(current.target);
          this.context.stderr.write(`checking which records of ${this.plan} still match on ${where} …\n`);
          const preview = await applySavedPlan(this.plan, { ...options, dryRun: true });
          this.context.stderr.write(
            `${preview.applied} record(s) would be applied, ${preview.drifted} drifted, ${preview.failed} failed (of ${preview.total} planned).\n`,
          );
          const no = preview.applied === 0 ? undefined : declined(await confirm(`Apply these changes to ${where}? [y/N] `));
          if (no) {
            this.context.stderr.write(`${no.message}.\n`);
            if (this.json) this.context.stdout.write(cancelledJson(no.message, preview));
            return no.exit;
          }
        }
      }
      const notes: string[] = [];
      // A slow reader of the record lines slows the apply instead of filling memory.
      const lines = boundedRecordLines(out);
      const summary = await applySavedPlan(this.plan, {
        ...options,
        dryRun: this.dryRun,
        ...(this.journal ? { journalPath: this.journal } : {}),
        onNote: (n) => notes.push(n),
        onEvent: (e) => {
          const mark = { applied: this.dryRun ? '~ would apply' : '~ applied', drifted: '! drifted', failed: '✗ failed' }[e.outcome];
          return lines.write(
            e.outcome,
            `${mark} ${e.table ? `${e.table} ` : ''}${formatKey(e.key)}${e.message ? ` (${e.message})` : ''}\n`,
          );
        },
      });
      const closing = lines.closing();
      if (closing) out.write(`${closing}\n`);
      out.write(
        `Apply summary${this.dryRun ? ' (dry run)' : ''}\n  total    ${summary.total}\n  applied  ${summary.applied}\n  drifted  ${summary.drifted}\n  failed   ${summary.failed}\n`,
      );
      for (const n of notes) this.context.stderr.write(`${n}\n`);
      if (this.json) this.context.stdout.write(`${JSON.stringify(summary)}\n`);
      return summary.drifted > 0 || summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr, this.json ? this.context.stdout : undefined);
    }
  }
}
