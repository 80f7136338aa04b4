/**
 * Listener-leak warnings seen while a test file runs: in its own process, and in the stderr of
 * every CLI process it started (`runCli`, `startProcess`). `clean-run.ts` fails the file on any.
 */
export const leakWarnings: string[] = [];

/** Notes a MaxListenersExceededWarning a CLI process printed on `stderr`. */
export function noteChildStderr(command: string, stderr: string): void {
  const line = stderr.split('\n').find((l) => l.includes('MaxListenersExceededWarning'));
  if (line !== undefined) leakWarnings.push(`${command}: ${line}`);
}
