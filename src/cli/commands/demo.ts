import { Command, Option } from 'clipanion';
import { EXIT, removingTempsOnStop, reportError } from '../exit.js';

export class DemoCommand extends Command {
  static override paths = [['demo']];

  static override usage = Command.Usage({
    description: 'Run the shipped fixes on embedded sample data: dry run, live run, then the rerun no-op.',
    details: `
      Creates sample data in a temporary directory (never touching your own databases), then
      runs each shipped fix three times: a dry run that writes nothing, the live run, and a
      second live run that finds nothing left to do.
    `,
    examples: [
      ['Show the demo', 'datafix demo'],
      ['Write the sample SQLite database to try the sync fix on', 'datafix demo --sample-db ./veo3-automation.db'],
    ],
  });

  keep = Option.Boolean('--keep', false, { description: 'Keep the temporary sample data and print where it is' });
  sampleDb = Option.String('--sample-db', {
    description: 'Only write the sample SQLite database (before any fix ran) to this new file, and exit',
  });

  override async execute(): Promise<number> {
    const { runDemo, writeSampleDatabase } = await import('../demo.js');
    try {
      if (this.sampleDb !== undefined) {
        const path = writeSampleDatabase(this.sampleDb);
        this.context.stdout.write(
          `sample database written to ${path}\ntry: VEO3_DB_PATH=${path} npx datafix run fixes/sync-media-generation-ids.yaml --dry-run\n`,
        );
        return EXIT.ok;
      }
      await removingTempsOnStop(this.context.stderr, () =>
        runDemo({ out: this.context.stdout, err: this.context.stderr, keep: this.keep }),
      );
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
