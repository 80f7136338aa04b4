import { Command, Option } from 'clipanion';
import { EXIT, removingTempsOnStop } from '../exit.js';

export class TestCommand extends Command {
  static override paths = [['test']];

  static override usage = Command.Usage({
    description: "Run fixes' own test cases on embedded engines (a temporary SQLite file, an in-process DynamoDB).",
    details: `
      Runs every \`*.test.yaml\` named, or found in each directory named (default: \`fixes\`).
      Each case seeds a fresh embedded database with its \`given\` records, does a dry run (which
      must change nothing and predict the live run's counts), then a live run, and compares the
      summary, the outcomes and the records afterwards with its \`expect\`. Records a case does not
      list must come out unchanged. A failing case prints what differs.

      Exit codes: 0 every case passed; 1 some case failed; 2 a test file or fix is invalid.
    `,
    examples: [
      ['Run every fix test', 'datafix test fixes'],
      ['Run one file', 'datafix test fixes/i2v-thumbnails.test.yaml'],
    ],
  });

  targets = Option.Rest({ name: 'PATH' });

  override async execute(): Promise<number> {
    const { FixTestRunner } = await import('../../fixtest/run.js');
    const { findSpecFiles } = await import('../files.js');
    const { formatDiagnostic } = await import('../../errors.js');
    const out = this.context.stdout;
    const { files, missing } = findSpecFiles(this.targets.length ? this.targets : ['fixes'], 'test');
    for (const m of missing) this.context.stderr.write(`error DF007: ${m}: no such file or directory\n`);
    if (files.length === 0) {
      this.context.stderr.write('error DF007: no *.test.yaml files found\n');
      return EXIT.invalid;
    }
    const runner = new FixTestRunner();
    let passed = 0;
    let failed = 0;
    let invalid = missing.length;
    try {
      for (const file of files) {
        const result = await removingTempsOnStop(this.context.stderr, () => runner.runFile(file));
        if (result.diagnostics) {
          invalid++;
          for (const d of result.diagnostics) this.context.stderr.write(`${formatDiagnostic(d)}\n`);
          continue;
        }
        out.write(`${file}\n`);
        for (const c of result.cases) {
          if (c.passed) passed++;
          else failed++;
          out.write(`  ${c.passed ? '✓' : '✗'} ${c.name}\n`);
          for (const p of c.problems) out.write(`      ${p}\n`);
        }
      }
    } finally {
      await runner.close();
    }
    out.write(`\n${passed} passed, ${failed} failed\n`);
    if (invalid > 0) return EXIT.invalid;
    return failed > 0 ? EXIT.recordsFailed : EXIT.ok;
  }
}
