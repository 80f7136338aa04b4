#!/usr/bin/env node
// Ctrl-C from the first moment: until a command takes the stop signals over, it ends with
// "interrupted: nothing was written." and exit 130 instead of a silent death.
const argv = process.argv.slice(2);
const { installEarlyStop } = await import('../dist/cli/early-stop.js');
installEarlyStop(argv);
// The top-level help is a fixed text, rendered at build time: printed without loading the CLI.
const { asksForHelpOnly, helpInColor, prebuiltHelp } = await import('../dist/cli/help-text.js');
const help = asksForHelpOnly(argv) ? prebuiltHelp(helpInColor()) : undefined;
if (help !== undefined) {
  // A reader that went away (`datafix --help | head`) is no error.
  process.stdout.on('error', () => {});
  process.stdout.write(help);
} else {
  // The AWS SDK prints a Node-version notice on every run under Node 20; datafix supports Node 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { main } = await import('../dist/cli/main.js');
  process.exitCode = await main(argv);
}
