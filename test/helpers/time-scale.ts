/**
 * How much slower than an ordinary 2-core machine this one is: every timeout the tests set (vitest's
 * own, the CLI kill timers, the waits for a process to reach a state) is multiplied by it. The
 * timeouts only guard against hangs, so a large factor costs nothing while tests pass.
 *
 * `DATAFIX_TEST_TIME_SCALE=N` sets it; otherwise 10 under CI (shared CI machines stall for seconds
 * at a time) and 1 elsewhere.
 */
export const TIME_SCALE = Math.max(
  1,
  Number(process.env.DATAFIX_TEST_TIME_SCALE) || (process.env.CI && process.env.CI !== 'false' ? 10 : 1),
);
