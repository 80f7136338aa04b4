import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { EXIT, reportError } from '../exit.js';

export class UnlockCommand extends Command {
  static override paths = [['unlock']];

  static override usage = Command.Usage({
    description: 'Clear a stale lock left by a run whose process is gone.',
    details: `
      A live run, resume, undo or apply holds a lock on its target (SQLite: next to the database
      file; DynamoDB: in $DATAFIX_LOCK_DIR, default ~/.datafix/locks) so that no two processes
      write one target at once. If its process died, the lock stays; this clears it once the process is confirmed
      gone. \`--force\` clears it regardless: only for a lock taken on another machine, or when
      you are sure no run is active.
    `,
    examples: [['Clear a stale lock', 'datafix unlock fixes/i2v-thumbnails.yaml --env prod']],
  });

  spec = Option.String({ name: 'SPEC' });
  env = Option.String('--env', { description: 'Load .env.NAME first, as for the run (it decides the target)' });
  segment = Option.String('--segment', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(0)]),
    description: 'The segment of the run',
  });
  totalSegments = Option.String('--total-segments', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]),
    description: 'Its total segments',
  });
  force = Option.Boolean('--force', false, { description: 'Clear even a lock whose process may be alive' });

  override async execute(): Promise<number> {
    try {
      const { loadPlan } = await import('../../api.js');
      const { TargetLock } = await import('../../safety/lock.js');
      const { describeTarget } = await import('../../adapters/registry.js');
      await (await import('../env.js')).loadEnvOption(this.env, this.context.stderr);
      const plan = loadPlan(this.spec);
      const segment =
        this.segment !== undefined && this.totalSegments !== undefined ? { index: this.segment, total: this.totalSegments } : undefined;
      const result = TargetLock.clear(plan.target, segment, this.force);
      const where = `${describeTarget(plan.target)}${segment ? ` (segment ${segment.index} of ${segment.total})` : ''}`;
      this.context.stdout.write(result === 'cleared' ? `cleared the lock on ${where}\n` : `no lock is held on ${where}\n`);
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
