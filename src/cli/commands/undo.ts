import { basename, dirname, resolve } from 'node:path';
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
  unverified = Option.Boolean('--unverified', false, {
    description: 'Undo a format-1 journal (no checksums, so its lines cannot be verified against edits)',
  });

  override async execute(): Promise<number> {
    const out = this.json ? this.context.stderr : this.context.stdout;
    try {
      const { undoJournal } = await import('../../safety/undo.js');
      const { openJournal } = await import('../../safety/journal.js');
      const { TargetLock } = await import('../../safety/lock.js');
      const { RunStateStore, STATE_DIR } = await import('../../safety/state.js');
      const { formatKey } = await import('../format.js');
      const { backpressured } = await import('../progress.js');
      const header = (await openJournal(this.journal)).header;
      // A live undo writes the target like a run: it takes the same lock. The run it undoes is
      // usually one that died holding it, so a stale lock is taken over as --resume does.
      const lock = this.dryRun
        ? undefined
        : TargetLock.acquire(header.target, { fix: header.fix, spec: header.specFile, purpose: 'undo', takeOverStale: true });
      let summary: Awaited<ReturnType<typeof undoJournal>>;
      try {
        summary = await this.undo(undoJournal, formatKey, backpressured);
      } finally {
        lock?.release();
      }
      if (!this.dryRun) {
        // The undone run is over: `--resume` must not continue it from its old checkpoint. Its
        // state file is in the `.datafix/` the journal is in (the default place for journals),
        // or in the working directory's, wherever undo is run from.
        const journalPath = resolve(this.journal);
        const runsDir = dirname(journalPath);
        const roots = new Set([process.cwd()]);
        if (basename(runsDir) === 'runs' && basename(dirname(runsDir)) === STATE_DIR) roots.add(dirname(dirname(runsDir)));
        // The header says where the run kept its state, so undo of a copy of the journal finds it.
        if (header.stateDir) roots.add(header.stateDir);
        for (const root of roots) {
          const store = new RunStateStore(root);
          const key = store.keyOfJournal(journalPath, header.runId);
          const state = key === undefined ? undefined : store.read(key);
          if (key !== undefined && state) store.write(key, { ...state, status: 'undone', updatedAt: new Date().toISOString() });
        }
      }
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
      return reportError(err, this.context.stderr, this.json ? this.context.stdout : undefined);
    }
  }

  private undo(
    undoJournal: typeof import('../../safety/undo.js').undoJournal,
    formatKey: typeof import('../format.js').formatKey,
    backpressured: typeof import('../progress.js').backpressured,
  ): ReturnType<typeof import('../../safety/undo.js').undoJournal> {
    // A slow reader of the record lines slows the undo instead of filling memory.
    const lines = backpressured(this.json ? this.context.stderr : this.context.stdout);
    return undoJournal(this.journal, {
      dryRun: this.dryRun,
      allowUnverified: this.unverified,
      onTarget: (t) =>
        this.context.stderr.write(`undo ${this.journal}${this.dryRun ? ' (dry run: nothing will be written)' : ''}\n  target  ${t}\n`),
      onNote: (text) => this.context.stderr.write(`note: ${text}\n`),
      onEvent: (e) => {
        if (e.outcome === 'unchanged' && !this.verbose) return undefined;
        const mark = {
          restored: this.dryRun ? '~ would restore' : '~ restored',
          unchanged: '- unchanged',
          conflict: '! conflict',
          failed: '✗ failed',
        }[e.outcome];
        lines.write(`${mark} ${e.table ? `${e.table} ` : ''}${formatKey(e.key)}${e.message ? ` (${e.message})` : ''}\n`);
        return lines.room();
      },
    });
  }
}
