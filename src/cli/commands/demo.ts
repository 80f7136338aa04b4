import { Command, Option } from 'clipanion';
import { EXIT, reportError } from '../exit.js';

export class DemoCommand extends Command {
  static override paths = [['demo']];

  static override usage = Command.Usage({
    description: 'Run the shipped fixes on embedded sample data: dry run, live run, then the rerun no-op.',
    details: `
      Creates sample data in a temporary directory (never touching your own databases), then
      runs each shipped fix three times: a dry run that writes nothing, the live run, and a
      second live run that finds nothing left to do.
    `,
    examples: [['Show the demo', 'datafix demo']],
  });

  keep = Option.Boolean('--keep', false, { description: 'Keep the temporary sample data and print where it is' });

  override async execute(): Promise<number> {
    const { runDemo } = await import('../demo.js');
    try {
      await runDemo({ out: this.context.stdout, err: this.context.stderr, keep: this.keep });
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
