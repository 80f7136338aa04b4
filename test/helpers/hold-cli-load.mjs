/**
 * Preloaded into a CLI process (`NODE_OPTIONS=--import=…`): holds the entry's import of the CLI
 * (`dist/cli/main.js`) for ever, after writing the file DATAFIX_TEST_HOLD_MARK. The entry imports
 * the CLI only once its first stop handler is in place, so a signal sent once the file exists lands
 * in that window, whatever the machine's load: before any command is loaded.
 */
import { register } from 'node:module';

register(new URL('./hold-cli-load-hooks.mjs', import.meta.url), { data: { mark: process.env.DATAFIX_TEST_HOLD_MARK } });
// The held import leaves nothing else for the event loop; without this timer Node would end the
// process (exit 13, an unsettled top-level await) instead of waiting for the signal.
setInterval(() => {}, 60_000);
