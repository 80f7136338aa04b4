import { Command, Option } from 'clipanion';
import { cancelledJson, EXIT, reportError } from '../exit.js';

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

      In a terminal a live undo first checks what it would restore, shows the counts and the
      target, and asks before writing (\`--yes\` skips the question; without a terminal it never
      asks). \`--env NAME\` loads .env.NAME first, for the credentials of the target.

      Prints a summary (\`--json\`: one JSON object on stdout with journal, fix, dryRun, total,
      notWritten, restored, unchanged, conflicts, failed, durationMs). Exit 0 when everything was restored or
      unchanged (or the question was answered no); 1 on conflicts or failures; 2 if the journal
      cannot be read or the target reached; 130 on Ctrl-C (SIGTERM, SIGHUP): at the question
      nothing is written; during the restores the batch in flight finishes, and running undo
      again continues (records already restored count as unchanged).
    `,
    examples: [
      ['See what undo would restore', 'datafix undo .datafix/runs/<run>.journal.jsonl --dry-run'],
      ['Undo a run', 'datafix undo my-run.journal.jsonl --json'],
      ['Undo a DynamoDB run with the credentials in .env.prod, without asking', 'datafix undo my-run.journal.jsonl --env prod --yes'],
    ],
  });

  journal = Option.String({ name: 'JOURNAL' });
  env = Option.String('--env', { description: 'Load .env.NAME from the working directory first (never overrides variables already set)' });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Write nothing; report what would be restored' });
  json = Option.Boolean('--json', false, { description: 'Print only the summary as one JSON object on stdout' });
  verbose = Option.Boolean('--verbose', false, { description: 'Also print records that are already unchanged' });
  unverified = Option.Boolean('--unverified', false, {
    description: 'Undo a format-1 journal (no checksums, so its lines cannot be verified against edits)',
  });
  yes = Option.Boolean('--yes,-y', false, { description: 'Do not ask for confirmation before a live undo in a terminal' });

  override async execute(): Promise<number> {
    const out = this.json ? this.context.stderr : this.context.stdout;
    const stderr = this.context.stderr;
    // Ctrl-C, SIGTERM and SIGHUP are this command's from its start: it never dies with the lock
    // held and no summary. See `stopOnSignals`.
    const stop = (await import('../stop.js')).stopOnSignals(stderr);
    try {
      const { undoJournal } = await import('../../safety/undo.js');
      const { openJournal } = await import('../../safety/journal.js');
      const { TargetLock } = await import('../../safety/lock.js');
      const { recordUndo } = await import('../../safety/runs.js');
      const { formatKey, summaryHeading } = await import('../format.js');
      const { boundedRecordLines } = await import('../progress.js');
      await (await import('../env.js')).loadEnvOption(this.env, stderr);
      const reading = await openJournal(this.journal);
      const header = reading.header;
      this.writeTotal = reading.writeCount;
      if (!this.dryRun && !this.yes) {
        const asked = await this.askFirst(undoJournal, header.target, stop.signal);
        if (asked !== undefined) return asked;
      }
      if (stop.signal.aborted) return this.nothingWritten();
      const again = `datafix undo ${this.journal}${this.env ? ` --env ${this.env}` : ''}`;
      if (!this.dryRun) {
        stop.writing(
          `the restores in flight were sent and may have landed. Continue with: ${again} (it takes over the lock left behind; records already restored count as unchanged)`,
        );
      }
      // A live undo writes the target like a run: it takes the same lock. The run it undoes is
      // usually one that died holding it, so a stale lock is taken over as --resume does.
      const lock = this.dryRun
        ? undefined
        : TargetLock.acquire(header.target, { fix: header.fix, spec: header.specFile, purpose: 'undo', takeOverStale: true });
      let summary: Awaited<ReturnType<typeof undoJournal>>;
      try {
        summary = await this.undo(undoJournal, formatKey, boundedRecordLines, stop.signal, () => lock?.verify());
      } finally {
        lock?.release();
      }
      // What `datafix runs` shows of the undone run: undone, or its undo interrupted.
      if (!this.dryRun) recordUndo(process.cwd(), this.journal, header, summary.interrupted ? 'interrupted' : 'done');
      const rows: [string, number][] = [
        ['total', summary.total],
        ['not written', summary.notWritten],
        ['restored', summary.restored],
        ['unchanged', summary.unchanged],
        ['conflicts', summary.conflicts],
        ['failed', summary.failed],
      ];
      out.write(
        `${summaryHeading('Undo', { dryRun: this.dryRun, interrupted: summary.interrupted })}\n${rows.map(([k, v]) => `  ${k.padEnd(12)}${v}\n`).join('')}`,
      );
      if (this.json) this.context.stdout.write(`${JSON.stringify(summary)}\n`);
      if (summary.interrupted) {
        stderr.write(
          this.dryRun
            ? `interrupted: ${summary.total} journaled write(s) were checked; a dry run writes nothing.\n`
            : `interrupted: ${summary.total} journaled write(s) were handled. Continue with: ${again} (records already restored count as unchanged)\n`,
        );
        return EXIT.interrupted;
      }
      return summary.conflicts > 0 || summary.failed > 0 ? EXIT.recordsFailed : EXIT.ok;
    } catch (err) {
      return reportError(err, stderr, this.json ? this.context.stdout : undefined);
    } finally {
      stop.dispose();
    }
  }

  /** The journal's writes, counted when it was first checked: what progress counts towards. */
  private writeTotal: number | undefined;

  private nothingWritten(): number {
    this.context.stderr.write('interrupted: nothing was written.\n');
    if (this.json) this.context.stdout.write(`${JSON.stringify({ interrupted: { message: 'interrupted: nothing was written' } })}\n`);
    return EXIT.interrupted;
  }

  /**
   * In a terminal: a dry pass, its counts and the target, then the question. Returns the exit
   * code when the person said no (0) or pressed Ctrl-C (130); undefined to go on.
   */
  private async askFirst(
    undoJournal: typeof import('../../safety/undo.js').undoJournal,
    target: import('../../plan/types.js').TargetPlan,
    signal: AbortSignal,
  ): Promise<number | undefined> {
    const { confirm, declined, isInteractive } = await import('../confirm.js');
    if (!isInteractive()) return undefined;
    const { describeTarget } = await import('../../adapters/registry.js');
    const stderr = this.context.stderr;
    const where = describeTarget(target);
    stderr.write(`checking what undo of ${this.journal} would restore on ${where} …\n`);
    const counting = await this.countsDisplay(`Checking ${this.journal}`, true);
    let preview: Awaited<ReturnType<typeof undoJournal>>;
    try {
      preview = await undoJournal(this.journal, {
        dryRun: true,
        allowUnverified: this.unverified,
        signal,
        adapter: { dynamodb: { stopSignal: signal } },
        onEvent: (e) => counting.count(e.outcome),
      });
    } catch (err) {
      await counting.end('error', `Checking ${this.journal} stopped`);
      throw err;
    }
    await counting.end(
      preview.interrupted ? 'interrupted' : 'done',
      `${preview.interrupted ? 'Stopped checking' : 'Checked'} ${preview.total} journaled write(s)`,
    );
    // Partial counts are no basis for a decision: an interrupted check asks nothing.
    if (preview.interrupted || signal.aborted) return this.nothingWritten();
    stderr.write(
      `${preview.restored} record(s) would be restored, ${preview.unchanged} unchanged, ${preview.conflicts} conflict(s), ${preview.failed} failed (of ${preview.total} journaled write(s)).\n`,
    );
    if (preview.restored === 0) return undefined;
    const no = declined(await confirm(`Restore these records on ${where}? [y/N] `, { signal }));
    if (!no) return undefined;
    stderr.write(`${no.message}.\n`);
    if (this.json) this.context.stdout.write(cancelledJson(no.message, preview));
    return no.exit;
  }

  private async undo(
    undoJournal: typeof import('../../safety/undo.js').undoJournal,
    formatKey: typeof import('../format.js').formatKey,
    boundedRecordLines: typeof import('../progress.js').boundedRecordLines,
    signal: AbortSignal,
    fence: () => void,
  ): ReturnType<typeof import('../../safety/undo.js').undoJournal> {
    // A slow reader of the record lines slows the undo instead of filling memory.
    const out = this.json ? this.context.stderr : this.context.stdout;
    const counting = await this.countsDisplay(`${this.dryRun ? 'Checking' : 'Undoing'} ${this.journal}`, this.dryRun);
    const lines = boundedRecordLines(out, counting.print);
    return undoJournal(this.journal, {
      dryRun: this.dryRun,
      allowUnverified: this.unverified,
      signal,
      // A process whose lease was taken over stops before its next restore.
      fence,
      // Requests to DynamoDB still unanswered shortly after the stop signal are cut off.
      adapter: { dynamodb: { stopSignal: signal } },
      onTarget: (t) =>
        this.context.stderr.write(`undo ${this.journal}${this.dryRun ? ' (dry run: nothing will be written)' : ''}\n  target  ${t}\n`),
      onNote: (text) => this.context.stderr.write(`note: ${text}\n`),
      onEvent: (e) => {
        counting.count(e.outcome);
        if (e.outcome === 'unchanged' && !this.verbose) return undefined;
        const mark = {
          restored: this.dryRun ? '~ would restore' : '~ restored',
          unchanged: '- unchanged',
          conflict: '! conflict',
          failed: '✗ failed',
        }[e.outcome];
        return lines.write(e.outcome, `${mark} ${e.table ? `${e.table} ` : ''}${formatKey(e.key)}${e.message ? ` (${e.message})` : ''}\n`);
      },
    }).then(
      async (summary) => {
        await counting.end(
          summary.interrupted ? 'interrupted' : summary.conflicts + summary.failed > 0 ? 'failed' : 'done',
          `${summary.interrupted ? 'Interrupted after' : this.dryRun ? 'Checked' : 'Undid'} ${summary.total} journaled write(s)${summary.conflicts + summary.failed > 0 ? `: ${summary.conflicts} conflict(s), ${summary.failed} failed` : ''}`,
        );
        const closing = lines.closing();
        if (closing) out.write(`${closing}\n`);
        return summary;
      },
      async (err) => {
        await counting.end('error', `${this.dryRun ? 'Checking' : 'Undoing'} ${this.journal} stopped`);
        throw err;
      },
    );
  }

  /**
   * In a terminal (and not under --json), a task list as apply's: the journal's writes handled,
   * of how many, with a rate and the time left; elsewhere nothing. `print` puts a record line
   * above the list (undefined: straight to the output).
   */
  private async countsDisplay(
    title: string,
    dryRun: boolean,
  ): Promise<{
    count(outcome: 'restored' | 'unchanged' | 'conflict' | 'failed'): void;
    print: ((text: string) => void) | undefined;
    end(outcome: 'done' | 'failed' | 'interrupted' | 'error', line: string): Promise<void>;
  }> {
    const list = (await import('../progress.js')).useTaskList(this.json)
      ? (await import('../task-list.js')).countsTaskList(title)
      : undefined;
    if (!list) return { count: () => {}, print: undefined, end: async () => {} };
    const { formatUndoProgress } = await import('../format.js');
    const total = this.writeTotal;
    const tally = { handled: 0, restored: 0, conflicts: 0, failed: 0 };
    const started = performance.now();
    return {
      count: (outcome) => {
        tally.handled++;
        if (outcome === 'restored') tally.restored++;
        else if (outcome === 'conflict') tally.conflicts++;
        else if (outcome === 'failed') tally.failed++;
        list.onProgress(formatUndoProgress(tally, total, performance.now() - started, dryRun));
      },
      print: (text) => list.print(text),
      end: (outcome, line) => list.end({ line, outcome }),
    };
  }
}
