/**
 * A stop signal delivered twice within a moment is one stop: GNU `timeout` signals the command
 * and then its whole process group, so the command gets SIGTERM (or `-s INT`) twice within
 * microseconds, which must not be taken for a person's second Ctrl-C ("stop at once").
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SAME_STOP_MS, stopEcho } from '../../src/cli/early-stop.js';
import { stopOnSignals } from '../../src/cli/stop.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a stop signal delivered twice', () => {
  it('is an echo within SAME_STOP_MS of the first, a second stop after it', async () => {
    const stops = stopEcho();
    expect(stops.echo()).toBe(false);
    stops.first();
    expect(stops.echo()).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, SAME_STOP_MS + 20));
    expect(stops.echo()).toBe(false);
  });

  it('stops apply and undo once when it comes twice at once, and at once when it comes again later', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    let said = '';
    const stderr = { write: (t: string) => (said += t) } as unknown as NodeJS.WritableStream;
    const stop = stopOnSignals(stderr);
    try {
      stop.writing('the writes in flight were sent.');
      process.emit('SIGTERM', 'SIGTERM');
      process.emit('SIGTERM', 'SIGTERM');
      expect(stop.signal.aborted).toBe(true);
      expect(exit).not.toHaveBeenCalled();
      expect(said).toBe('\ninterrupt: finishing the writes in flight and journaling them (Ctrl-C again to stop at once)\n');
      await new Promise((resolve) => setTimeout(resolve, SAME_STOP_MS + 20));
      process.emit('SIGINT', 'SIGINT');
      expect(exit).toHaveBeenCalledWith(130);
      expect(said).toContain('stopped at once: the writes in flight were sent.');
    } finally {
      stop.dispose();
    }
  });
});
