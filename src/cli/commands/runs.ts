import { relative } from 'node:path';
import { Command, Option } from 'clipanion';
import { cancelledJson, EXIT, reportError } from '../exit.js';

type RecordedRun = import('../../safety/runs.js').RecordedRun;

/** `1.5 KiB`, `12.0 MiB`: a size a person reads at a glance. */
function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** A path relative to the working directory when it is inside it, as the person would type it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

/** `read 300 · updated 120 · skipped 170 · failed 10 · 120 write(s) journaled`. */
function counts(run: RecordedRun): string {
  const parts: string[] = [];
  if (run.read !== undefined) parts.push(`${run.kind === 'apply' ? 'planned' : 'read'} ${run.read}`);
  if (run.summary) parts.push(`updated ${run.summary.updated}`, `skipped ${run.summary.skipped}`, `failed ${run.summary.failed}`);
  parts.push(`${run.writes} write(s) journaled`);
  return parts.join(' · ');
}

export class RunsCommand extends Command {
  static override paths = [['runs']];

  static override usage = Command.Usage({
    description: 'List the runs recorded in .datafix/ of this directory: fix, target, status, counts, journal, size.',
    details: `
      Lists every live run and apply whose journal or state is in \`.datafix/runs/\` of the
      working directory (and journals written elsewhere with \`--journal\` that a state names),
      newest first: the fix, the target (never its credentials), the status, the counts, the
      journal (the file \`datafix undo\` takes) and the size of its files.

      Status: \`running\` (its process, which holds the target's lock, is alive; the line names
      it) or \`interrupted\` (also a run whose process died: the line says it is gone), both
      resumable with \`datafix run SPEC --resume\` (an interrupted apply is continued by running
      the apply again); \`done\`, \`undone\`, \`undo
      interrupted\` (run the undo again to continue it), \`stopped\` (it ended without finishing
      and a later run started over), or \`unreadable\` (not a journal datafix can read).

      \`datafix runs prune --older-than 30d\` removes the files of old finished runs.
    `,
    examples: [
      ['List the runs of this directory', 'datafix runs'],
      ['As one JSON object', 'datafix runs --json'],
    ],
  });

  json = Option.Boolean('--json', false, { description: 'Print {"runs": […]} as one JSON object on stdout' });

  override async execute(): Promise<number> {
    try {
      const { listRuns, runsDir } = await import('../../safety/runs.js');
      const runs = await listRuns(process.cwd());
      if (this.json) {
        this.context.stdout.write(`${JSON.stringify({ runs })}\n`);
        return EXIT.ok;
      }
      if (runs.length === 0) {
        this.context.stdout.write(`no runs recorded in ${shown(runsDir(process.cwd()))}\n`);
        return EXIT.ok;
      }
      for (const run of runs) {
        const when = (run.startedAt ?? run.lastWrittenAt).replace('T', ' ').replace(/:\d\d\.\d+Z$/, 'Z');
        const proc = run.process;
        const status = `${run.status.replace('-', ' ')}${
          run.resumable
            ? proc === undefined
              ? ' (resumable)'
              : proc.alive === false
                ? ` (resumable: its process ${proc.pid} on ${proc.host} is gone)`
                : ` (process ${proc.pid} on ${proc.host}${proc.alive ? ' is alive' : ', which cannot be checked from here'})`
            : run.status === 'undo-interrupted'
              ? ` (continue with: datafix undo ${run.journal ? shown(run.journal) : 'JOURNAL'})`
              : run.kind === 'apply' && run.status === 'interrupted'
                ? ' (run the apply again to continue)'
                : ''
        }`;
        this.context.stdout.write(
          `${when}  ${run.kind === 'apply' ? 'apply ' : ''}${run.fix}  ${status}\n` +
            `    target   ${run.target}\n` +
            `    counts   ${counts(run)}\n` +
            `    journal  ${run.journal ? shown(run.journal) : '(missing)'}  ${formatBytes(run.bytes)}\n`,
        );
      }
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr, this.json ? this.context.stdout : undefined);
    }
  }
}

export class RunsPruneCommand extends Command {
  static override paths = [['runs', 'prune']];

  static override usage = Command.Usage({
    description: 'Remove the files of finished runs last written more than AGE ago.',
    details: `
      Removes the journal and state file of each run in \`.datafix/runs/\` whose files were last
      written more than AGE ago (\`30d\`, \`12h\`, \`2w\`; units s, m, h, d, w) and that is finished.
      Never removes a run that can be resumed, a journal datafix cannot read, a run newer than AGE,
      nor a journal written elsewhere with \`--journal\` (its state file goes).

      A finished run whose journal holds writes that were not undone is kept unless you agree:
      its journal is the only way to undo them. In a terminal prune lists those runs and asks;
      otherwise they are kept and named, and \`--force\` removes them too.

      Exit 0 (also when the question is answered no); 130 on Ctrl-C at the question.
    `,
    examples: [
      ['See what would go', 'datafix runs prune --older-than 30d --dry-run'],
      ['Remove finished runs older than 30 days', 'datafix runs prune --older-than 30d'],
      ['Also their journals, without asking', 'datafix runs prune --older-than 30d --force'],
    ],
  });

  olderThan = Option.String('--older-than', { required: true, description: 'Only runs last written longer ago than AGE, e.g. 30d' });
  force = Option.Boolean('--force', false, {
    description: 'Also remove journals that are the only way to undo their runs, without asking',
  });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Remove nothing; say what would be removed' });
  json = Option.Boolean('--json', false, { description: 'Print {"removed", "kept", "bytesFreed"} as one JSON object on stdout' });

  override async execute(): Promise<number> {
    const out = this.json ? this.context.stderr : this.context.stdout;
    try {
      const { bytesToRemove, filesToRemove, parseAge, planPrune, removeRun } = await import('../../safety/runs.js');
      const decisions = await planPrune(process.cwd(), parseAge(this.olderThan));
      const asked = decisions.filter((d) => d.action === 'ask');
      let removeAsked = this.force;
      if (asked.length > 0 && !this.force && !this.dryRun) {
        const { confirm, declined, isInteractive } = await import('../confirm.js');
        if (isInteractive()) {
          this.context.stderr.write(`${asked.length} run(s) hold writes whose journal is the only way to undo them:\n`);
          for (const { run } of asked) this.context.stderr.write(`  ${run.journal ? shown(run.journal) : run.fix} (${counts(run)})\n`);
          const answer = await confirm('Remove them too? [y/N] ');
          const stop = declined(answer);
          if (stop && answer === 'interrupted') {
            // Pruning removes files and writes no data: say what did not happen here.
            const message = 'interrupted: nothing was removed';
            this.context.stderr.write(`${message}.\n`);
            if (this.json) this.context.stdout.write(cancelledJson(message, null));
            return stop.exit;
          }
          removeAsked = stop === undefined;
        }
      }
      const removed: RecordedRun[] = [];
      const kept: { run: RecordedRun; why: string }[] = [];
      let bytesFreed = 0;
      const verb = this.dryRun ? 'would remove' : 'removed';
      for (const d of decisions) {
        if (d.action === 'remove' || (d.action === 'ask' && removeAsked)) {
          const files = filesToRemove(process.cwd(), d.run);
          bytesFreed += this.dryRun ? bytesToRemove(process.cwd(), d.run) : removeRun(process.cwd(), d.run);
          removed.push(d.run);
          out.write(`${verb} ${files.map(shown).join(', ')} (${d.run.fix}, ${d.run.status})\n`);
          continue;
        }
        if (d.reason === 'newer' || d.reason === undefined) continue;
        const why = {
          resumable: `resumable: continue with datafix run ${d.run.specFile ?? 'SPEC'} --resume, or undo it`,
          unreadable: 'not a journal datafix can read',
          'only-undo': `its journal is the only way to undo ${d.run.writes} write(s); --force removes it`,
        }[d.reason];
        kept.push({ run: d.run, why });
        out.write(`kept ${d.run.journal ? shown(d.run.journal) : d.run.fix}: ${why}\n`);
      }
      const newer = decisions.filter((d) => d.reason === 'newer').length;
      out.write(
        `${verb} ${removed.length} run(s), ${formatBytes(bytesFreed)}; kept ${kept.length} older and ${newer} newer than ${this.olderThan}\n`,
      );
      if (this.json) {
        const view = (r: RecordedRun) => ({ fix: r.fix, status: r.status, journal: r.journal ?? null, bytes: r.bytes });
        this.context.stdout.write(
          `${JSON.stringify({ dryRun: this.dryRun, removed: removed.map(view), kept: kept.map((k) => ({ ...view(k.run), why: k.why })), bytesFreed })}\n`,
        );
      }
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr, this.json ? this.context.stdout : undefined);
    }
  }
}
