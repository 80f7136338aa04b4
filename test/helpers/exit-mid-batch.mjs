/**
 * Runs the fix at argv[2] live (working directory argv[3]) through the build, and calls
 * `process.exit(7)` 200 ms after page 3 starts being written, saying `exiting` first. The test
 * takes the write lock once page 1 is committed, so a batch is then waiting for it in the write
 * thread, and maybe another queued behind it.
 */
const { loadPlan } = await import(new URL('../../dist/api.js', import.meta.url).href);
const { runPlanSafely } = await import(new URL('../../dist/safety/session.js', import.meta.url).href);
const [spec, cwd] = process.argv.slice(2);
await runPlanSafely(loadPlan(spec), {
  dryRun: false,
  cwd,
  specFile: spec,
  onEvent: (e) => {
    if (e.type === 'writing' && e.index === 2) {
      setTimeout(() => {
        process.stdout.write('exiting\n');
        process.exit(7);
      }, 200);
    }
  },
});
process.exit(0);
