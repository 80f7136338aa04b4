/** Progress lines a person plans by: the ETA of `apply` reads like `run`'s, never as raw seconds. */
import { describe, expect, it } from 'vitest';
import { formatApplyProgress } from '../../src/cli/format.js';

describe('apply progress', () => {
  it('gives the time left in hours and minutes, as run does', () => {
    const line = formatApplyProgress({ handled: 1, applied: 1, drifted: 0, failed: 0 }, 47888, 1000, false);
    expect(line).toBe('1 of 47888 (0%) · 1 applied · 0 drifted · 0 failed · 1/s · ETA 13 h 18 min');
    expect(formatApplyProgress({ handled: 300, applied: 290, drifted: 10, failed: 0 }, 1000, 3000, true)).toBe(
      '300 of 1000 (30%) · 290 would apply · 10 drifted · 0 failed · 100/s · ETA 7 s',
    );
  });
});
