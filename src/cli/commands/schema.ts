import { Command } from 'clipanion';
import { EXIT, reportError } from '../exit.js';

export class SchemaCommand extends Command {
  static override paths = [['schema']];

  static override usage = Command.Usage({
    description: 'Print the JSON Schema of fix specs (for editors and other tools).',
    examples: [['Save the schema', 'datafix schema > fix.schema.json']],
  });

  override async execute(): Promise<number> {
    try {
      const { fixSchema } = await import('../../language/validate.js');
      this.context.stdout.write(`${JSON.stringify(fixSchema(), null, 2)}\n`);
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
