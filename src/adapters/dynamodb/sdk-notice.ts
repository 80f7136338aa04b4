/**
 * The AWS SDK for JavaScript prints a notice (`NodeVersionSupportWarning`) on stderr the first
 * time a client is created in a process on Node below 22: SDK versions published after January
 * 2027 will need Node 22. datafix pins its SDK version and supports Node ≥ 20.19 itself (see
 * `engines` in package.json), so the notice is noise on a command's output, and from the library
 * it would be printed on the output of whatever program uses datafix.
 */

/** The SDK's documented switch for that notice. */
const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Creates an SDK client (`create` must construct it synchronously, where the SDK decides on the
 * notice) with the notice switched off, and puts the environment back as it was. The SDK shows
 * the notice at most once per process, so later clients of the process — the program's own too —
 * show none either. A switch the environment already sets is left as it is.
 */
export function withoutNodeVersionNotice<T>(create: () => T): T {
  if (process.env[SWITCH] !== undefined) return create();
  process.env[SWITCH] = 'true';
  try {
    return create();
  } finally {
    delete process.env[SWITCH];
  }
}
