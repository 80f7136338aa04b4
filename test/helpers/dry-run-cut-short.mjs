/**
 * A dry run of the spec argv[2] (a SQLite fix) whose database file another program cuts short
 * while the run reads it: once page argv[3] is done, the file is truncated to argv[4] bytes
 * (`copy`: rewritten in place with its first 20000 bytes, as a copy over it starts). Prints one
 * JSON line, the run's summary or its error ({ code, message }); a read through a stale memory
 * map would end the process with SIGBUS instead, printing nothing.
 */
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { loadPlan, runPlan } from '../../dist/index.js';

const [spec, afterPage, cut] = process.argv.slice(2);
const plan = loadPlan(spec);
const path = plan.target.path;
try {
  const result = await runPlan(plan, {
    dryRun: true,
    onEvent: (e) => {
      if (e.type !== 'page' || e.index !== Number(afterPage)) return;
      if (cut === 'copy') writeFileSync(path, readFileSync(path).subarray(0, 20_000));
      else truncateSync(path, Number(cut));
    },
  });
  process.stdout.write(`${JSON.stringify({ summary: result.summary })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ code: err.code, message: err.message })}\n`);
}
