/**
 * Runs the fix at argv[2] live (working directory argv[3]) through the build, and calls
 * `process.exit(7)` 200 ms after page 2 starts being written, saying `exiting` first: page 1's
 * batch is then in the write thread (waiting for a lock the test holds) and page 2's queued
 * behind it.
 */
const { loadPlan } = await import(new URL('../../dist/api.js', import.meta.url).href);
const { runPlanSafely } = await import(new URL('../../dist/safety/session.js', import.meta.url).href);
const [spec, cwd] = process.argv.slice(2);
await runPlanSafely(loadPlan(spec), {
  dryRun: false,
  cwd,
  specFile: spec,
  onEvent: (e) => {
    if (e.type === 'writing' && e.index === 1) {
      setTimeout(() => {
        process.stdout.write('exiting\n');
        process.exit(7);
      }, 200);
    }
  },
});
process.exit(0);
