/**
 * Preloaded with `node --import` into a process the benchmark does not control (the datafix CLI):
 * writes the process's peak RSS in KiB to $BENCH_RSS_FILE when it exits.
 */
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_RSS_FILE;
if (out) {
  process.on('exit', () => {
    writeFileSync(out, String(process.resourceUsage().maxRSS));
  });
}
