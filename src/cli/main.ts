/**
 * CLI entry. Kept light: command modules import only clipanion at load time and load the
 * engine, YAML/JSON Schema tooling and backends when a command actually runs.
 */
import { Builtins, Cli } from 'clipanion';
import { VERSION } from '../version.js';
import { ApplyCommand } from './commands/apply.js';
import { DemoCommand } from './commands/demo.js';
import { ExplainCommand } from './commands/explain.js';
import { NewCommand } from './commands/new.js';
import { PlanCommand } from './commands/plan.js';
import { RunCommand } from './commands/run.js';
import { RunsCommand, RunsPruneCommand } from './commands/runs.js';
import { SchemaCommand } from './commands/schema.js';
import { TestCommand } from './commands/test.js';
import { UndoCommand } from './commands/undo.js';
import { UnlockCommand } from './commands/unlock.js';
import { ValidateCommand } from './commands/validate.js';
import { EXIT, reportError } from './exit.js';
import { helpInColor } from './help-text.js';
import { bindNegativeValues, commandLineError, DatafixCli } from './usage.js';

/**
 * Keeps a reader that went away (`datafix … | head`) from crashing the process: the failed write
 * to the closed pipe (EPIPE) would otherwise be an uncaught error with a stack, leaving a stale
 * lock and no end line. Output to it is dropped from then on; `run` also stops like Ctrl-C.
 */
function dropOutputErrors(stream: NodeJS.WriteStream): void {
  stream.on('error', () => {});
}

/** The CLI with every command registered; `colors` as clipanion's `enableColors`. */
export function createCli(colors: boolean): DatafixCli {
  const cli = new DatafixCli({ binaryLabel: 'datafix', binaryName: 'datafix', binaryVersion: VERSION, enableColors: colors });
  cli.register(RunCommand);
  cli.register(NewCommand);
  cli.register(PlanCommand);
  cli.register(ApplyCommand);
  cli.register(ValidateCommand);
  cli.register(DemoCommand);
  cli.register(ExplainCommand);
  cli.register(SchemaCommand);
  cli.register(TestCommand);
  cli.register(UndoCommand);
  cli.register(UnlockCommand);
  cli.register(RunsCommand);
  cli.register(RunsPruneCommand);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  return cli;
}

/** The top-level help as `datafix --help` prints it (clipanion's HelpCommand: `cli.usage()`). */
export function renderHelp(colors: boolean): string {
  return createCli(colors).usage();
}

/**
 * Runs the CLI on `argv` (without node and the script) and resolves to the exit code. (The entry
 * script prints the top-level help alone from its prebuilt text, without calling this.)
 */
export async function main(argv: string[]): Promise<number> {
  dropOutputErrors(process.stdout);
  dropOutputErrors(process.stderr);
  const cli = createCli(helpInColor());
  const context = { ...Cli.defaultContext };
  let command: ReturnType<typeof cli.process>;
  const args = bindNegativeValues(cli, argv.length ? argv : ['--help']);
  try {
    command = cli.process(args, context);
  } catch (err) {
    // clipanion reports bad usage on stdout with exit 1; ours is stderr (and, under --json, one
    // JSON object on stdout) and exit 2.
    const json = args.slice(0, args.includes('--') ? args.indexOf('--') : undefined).includes('--json');
    const usageError = commandLineError(cli, args, err);
    if (usageError) return reportError(usageError, process.stderr, json ? process.stdout : undefined);
    process.stderr.write(cli.error(err as Error, { colored: false }));
    return EXIT.invalid;
  }
  return cli.run(command, context);
}
