import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { EXIT, reportError } from '../exit.js';

export class NewCommand extends Command {
  static override paths = [['new']];

  static override usage = Command.Usage({
    description: 'Start a new fix: a commented spec and a test file with passing cases.',
    details: `
      Writes NAME.yaml and NAME.test.yaml into --dir (default: fixes). Both validate and the
      cases pass as written; edit them into your fix, keeping \`datafix test\` green.
    `,
    examples: [
      ['A SQLite fix', 'datafix new backfill-order-country --backend sqlite'],
      ['A DynamoDB fix in another directory', 'datafix new copy-customer-email --backend dynamodb --dir ops/fixes'],
    ],
  });

  name = Option.String({ name: 'NAME' });
  backend = Option.String('--backend', {
    required: true,
    validator: t.isEnum(['sqlite', 'dynamodb'] as const),
    description: 'sqlite or dynamodb',
  });
  dir = Option.String('--dir', 'fixes', { description: 'Directory to write into (default: fixes)' });

  override async execute(): Promise<number> {
    try {
      const { scaffold } = await import('../../scaffold.js');
      const { spec, test } = scaffold(this.name, this.backend, this.dir);
      this.context.stdout.write(`created ${spec}\ncreated ${test}\n\nnext: datafix test ${test}\n      datafix explain ${spec}\n`);
      return EXIT.ok;
    } catch (err) {
      return reportError(err, this.context.stderr);
    }
  }
}
