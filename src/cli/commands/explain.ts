import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { EXIT, reportError } from '../exit.js';

export class ExplainCommand extends Command {
  static override paths = [['explain']];

  static override usage = Command.Usage({
    description: 'Describe a fix in plain language, for a pull request description or a review.',
    details: `
      Prints the target, the records read (index, key conditions), the lookups and their keys,
      the extracted values, each skip reason with its condition, what is written and how it is
      guarded, and the run settings. Environment variables are shown as written, not resolved.
      The output is deterministic.
    `,
    examples: [
      ['Markdown for a PR description', 'datafix explain fixes/i2v-thumbnails.yaml'],
      ['Plain text', 'datafix explain fixes/i2v-thumbnails.yaml --format text'],
    ],
  });

  spec = Option.String({ name: 'SPEC' });
  format = Option.String('--format', 'markdown', {
    validator: t.isEnum(['markdown', 'text'] as const),
    description: 'markdown (default) or text',
  });

  override async execute(): Promise<number> {
    try {
      const { loadSpecFile } = await import('../../language/load.js');
      const { compileSpec } = await import('../../language/compile.js');
      const { explain } = await import('../../explain.js');
      const loaded = loadSpecFile(this.spec);
      const plan = compileSpec(loaded, { skipEnv: true });
      this.context.stdout.write(explain(loaded.data as never, plan, this.format));
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
