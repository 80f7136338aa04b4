import { Command, Option } from 'clipanion';
import { EXIT, reportError } from '../exit.js';

export class UndoCommand extends Command {
  static override paths = [['undo']];

  static override usage = Command.Usage({
    description: 'Restore what a live run changed, from its journal.',
    details: `
      Puts back the before-image of every field the run wrote. Each restore is conditional on the
      field still holding what the run wrote: a record changed since is reported as a conflict and
      left alone. Records already as they were before count as unchanged.

      The whole journal is checked first (every line, and from format 2 each line's checksum): a
      damaged or edited journal is refused before anything is restored. Writes the run recorded as
      not made count as "not written"; writes whose outcome the run never recorded (it stopped
      first) are checked against the target like any other.

      Prints a summary (\`--json\`: one JSON object on stdout with journal, fix, dryRun, total,
      notWritten, restored, unchanged, conflicts, failed, durationMs). Exit 0 when everything was restored or
      unchanged; 1 on conflicts or failures; 2 if the journal cannot be read or the target reached.
    `,
    examples: [
      ['See what undo would restore', 'datafix undo .datafix/runs/<run>.journal.jsonl --dry-run'],
      ['Undo a run', 'datafix undo my-run.journal.jsonl --json'],
    ],
  });

  journal = Option.String({ name: 'JOURNAL' });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Write nothing; report what would be restored' });
  json = Option.Boolean('--json', false, { description: 'Print only the summary as one JSON object on stdout' });
  verbose = Option.Boolean('--verbose', false, { description: 'Also print records that are already unchanged' });

  override async execute(): Promise<number> {
    const out = this.json ? this.context.stderr : this.context.stdout;
    try {
      const { undoJournal } = await import('../../safety/undo.js');
      const { formatKey } = await import('../format.js');
      const summary = await undoJournal(this.journal, {
        dryRun: this.dryRun,
        onTarget: (t) =>
          this.context.stderr.write(`undo ${this.journal}${this.dryRun ? ' (dry run: nothing will be written)' : ''}\n  target  ${t}\n`),
        onNote: (text) => this.context.stderr.write(`note: ${text}\n`),
        onEvent: (e) => {
          if (e.outcome === 'unchanged' && !this.verbose) return;
          const mark = {
            restored: this.dryRun ? '~ would restore' : '~ restored',
            unchanged: '- unchanged',
            conflict: '! conflict',
            failed: '✗ failed',
          }[e.outcome];
          out.write(`${mark} ${e.table ? `${e.table} ` : ''}${formatKey(e.key)}${e.message ? ` (${e.message})` : ''}\n`);
        },
      });
      const rows: [string, number][] = [
        ['total', summary.total],
        ['not written', summary.notWritten],
        ['restored', summary.restored],
        ['unchanged', summary.unchanged],
        ['conflicts', summary.conflicts],
        ['failed', summary.failed],
      ];
      out.write(`Undo summary${this.dryRun ? ' (dry run)' : ''}\n${rows.map(([k, v]) => `  ${k.padEnd(12)}${v}\n`).join('')}`);
      if (this.json) this.context.stdout.write(`${JSON.stringify(summary)}\n`);
      return summary.conflicts > 0 || summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
