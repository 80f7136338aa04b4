#!/usr/bin/env node
// Ctrl-C from the first moment: until a command takes the stop signals over, it ends with
// "interrupted: nothing was written." and exit 130 instead of a silent death.
const { installEarlyStop } = await import('../dist/cli/early-stop.js');
installEarlyStop(process.argv.slice(2));
// The AWS SDK prints a Node-version notice on every run under Node 20; datafix supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
