/** Turns the benchmark's results into the Markdown tables printed and written to docs/performance.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

const s = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const mib = (kb) => `${Math.round(kb / 1024)} MiB`;
const x = (r) => `${r.toFixed(2)}×`;
const n = (v) => v.toLocaleString('en-US');
const best = (runs) => runs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
const peakRss = (runs) => Math.max(...runs.map((r) => r.maxRssKb));

function verdict(ok, aimOk) {
  if (aimOk === undefined) return ok ? 'yes' : '**no**';
  if (ok && aimOk) return 'yes (aim too)';
  if (ok) return 'yes (aim: **no**)';
  return '**no**';
}

function sqliteLabel(rows) {
  return rows >= 1_000_000 ? `${rows / 1_000_000}M` : `${rows / 1000}k`;
}

const shapeLabel = { standard: 'large JSON (~1.6 KB)', light: 'light (~150 B)', huge: '5 MiB rows' };

/** Derived numbers: what the targets are checked against. */
export function summarize(results) {
  const out = { sqlite: [], dynamo: undefined, coldStart: results.coldStart };
  for (const r of results.sqlite ?? []) {
    const pair = (datafixSide, baselineSide) => {
      const dr = r.runs[datafixSide];
      const br = r.runs[baselineSide];
      if (!dr || !br) return undefined;
      const d = best(dr);
      const b = best(br);
      return {
        rounds: dr.length,
        datafixMs: d.wallMs,
        baselineMs: b.wallMs,
        ratio: d.wallMs / b.wallMs,
        datafixCpuMs: d.cpuMs,
        baselineCpuMs: b.cpuMs,
        datafixProcessMs: Math.min(...dr.map((v) => v.processMs)),
        baselineProcessMs: Math.min(...br.map((v) => v.processMs)),
        datafixRssKb: peakRss(dr),
        baselineRssKb: peakRss(br),
        journalBytes: Math.max(...dr.map((v) => v.journalBytes ?? 0)),
      };
    };
    out.sqlite.push({
      rows: r.rows,
      shape: r.shape ?? 'standard',
      fs: r.fs,
      ...pair('datafix', 'baseline'),
      dry: pair('datafix-dry', 'baseline-dry'),
      dryMapped: pair('datafix-dry', 'baseline-dry-mapped'),
      cli: r.cli,
      verified: r.verification.ok && (r.cli ? r.cli.verification.ok : true),
      expected: r.expected,
      generateMs: r.generateMs,
      fileMiB: r.fileMiB,
    });
  }
  if (results.dynamo) {
    const { sides, expected } = results.dynamo;
    const d = sides.datafix;
    const pages = d.requests.Query ?? 0;
    out.dynamo = {
      ...results.dynamo,
      speedup: sides.seed.wallMs / d.wallMs,
      bestRatio: sides.best ? d.wallMs / sides.best.wallMs : undefined,
      perUpdated: d.totalRequests / expected.updated,
      perUpdatedWithoutPages: (d.totalRequests - pages) / expected.updated,
      seedPerUpdated: sides.seed.totalRequests / expected.updated,
      seedPerUpdatedWithoutPages: (sides.seed.totalRequests - (sides.seed.requests.Query ?? 0)) / expected.updated,
    };
  }
  return out;
}

/** The Markdown for the marked section of docs/performance.md (and the console). */
export function renderMarkdown(summary, meta) {
  const lines = [];
  const m = meta.machine;
  lines.push(
    `${meta.mode === 'full' ? 'Last full run' : 'Run'}: ${m.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.os}); ` +
      `mode \`${meta.mode}\`, whole benchmark ${s(meta.totalMs)}. SQLite files on ${meta.diskFs}. Every ratio below compares two measurements of this one run.`,
  );
  lines.push('');
  lines.push('| Target | datafix | reference | result | must (aim) | holds |');
  lines.push('|---|---|---|---|---|---|');
  const disk = (shape) => summary.sqlite.filter((r) => r.fs === 'disk' && r.shape === shape);
  const light = disk('light')[0];
  const standard = disk('standard')[0];
  const live = (r, must, aim, what) => {
    if (!r?.datafixMs) return;
    lines.push(
      `| SQLite sync, ${sqliteLabel(r.rows)} ${what} rows, live run with journal (best of ${r.rounds}) | ${s(r.datafixMs)} | ${s(r.baselineMs)} hand-written | ${x(r.ratio)} | ≤ ${must}× (≤ ${aim}×) | ${verdict(r.ratio <= must, r.ratio <= aim)} |`,
    );
  };
  live(light, 1.5, 1.2, 'light');
  live(standard, 1.2, 1.05, 'large-JSON');
  for (const r of [light, standard]) {
    if (!r?.dry) continue;
    lines.push(
      `| SQLite dry run, ${sqliteLabel(r.rows)} ${r.shape === 'light' ? 'light' : 'large-JSON'} rows (best of ${r.dry.rounds}) | ${s(r.dry.datafixMs)} | ${s(r.dry.baselineMs)} hand-written, reading and computing only | ${x(r.dry.ratio)} | ≤ 1.5× (≤ 1.2×) | ${verdict(r.dry.ratio <= 1.5, r.dry.ratio <= 1.2)} |`,
    );
    if (r.dryMapped) {
      lines.push(
        `| SQLite dry run, ${sqliteLabel(r.rows)} ${r.shape === 'light' ? 'light' : 'large-JSON'} rows, against the script reading through the same memory map | ${s(r.dryMapped.datafixMs)} | ${s(r.dryMapped.baselineMs)} hand-written with \`mmap_size\` | ${x(r.dryMapped.ratio)} | (for reference) | – |`,
      );
    }
  }
  const dy = summary.dynamo;
  if (dy) {
    if (dy.bestRatio !== undefined) {
      lines.push(
        `| DynamoDB i2v, ${n(dy.videos)} videos @ ${dy.latencyMs} ms, wall (median of ${dy.datafixWallMs.length}) | ${s(dy.sides.datafix.wallMs)} | ${s(dy.sides.best.wallMs)} hand-written best case, same SDK and concurrency | ${x(dy.bestRatio)} | ≤ 1.2× (≤ 1.1×) | ${verdict(dy.bestRatio <= 1.2, dy.bestRatio <= 1.1)} |`,
      );
    }
    lines.push(
      `| DynamoDB requests per updated record, without / with the Query pages | ${dy.perUpdatedWithoutPages.toFixed(3)} / ${dy.perUpdated.toFixed(3)} | seed: ${dy.seedPerUpdatedWithoutPages.toFixed(2)} / ${dy.seedPerUpdated.toFixed(2)} | ${n(dy.sides.datafix.totalRequests)} requests for ${n(dy.expected.updated)} updates | ≤ 1.05 plus pages | ${verdict(dy.perUpdatedWithoutPages <= 1.05)} |`,
    );
    lines.push(
      `| DynamoDB i2v against the seed's algorithm | ${s(dy.sides.datafix.wallMs)} | ${s(dy.sides.seed.wallMs)} seed's algorithm | ${dy.speedup.toFixed(1)}× faster | (for reference) | – |`,
    );
  }
  const small = standard;
  const large = disk('standard').find((r) => r.rows > (small?.rows ?? 0));
  if (small?.datafixRssKb && large?.datafixRssKb) {
    const r = large.datafixRssKb / small.datafixRssKb;
    lines.push(
      `| datafix peak RSS, ${sqliteLabel(large.rows)} vs ${sqliteLabel(small.rows)} SQLite rows | ${mib(large.datafixRssKb)} vs ${mib(small.datafixRssKb)} | hand-written: ${mib(large.baselineRssKb)} vs ${mib(small.baselineRssKb)} | ${x(r)} | ≤ 1.2× (flat) | ${verdict(r <= 1.2, r <= 1.05)} |`,
    );
  }
  const huge = disk('huge')[0];
  if (huge?.datafixRssKb) {
    const rss = huge.datafixRssKb / 1024;
    lines.push(
      `| datafix peak RSS, ${n(huge.rows)} SQLite rows of 5 MiB | ${mib(huge.datafixRssKb)} | hand-written (pages of 200 rows): ${mib(huge.baselineRssKb)} | ${mib(huge.datafixRssKb)} | ≤ 512 MB (≤ 256 MB) | ${verdict(rss * 1.048576 <= 512, rss * 1.048576 <= 256)} |`,
    );
  }
  const cs = summary.coldStart;
  if (cs) {
    lines.push(
      `| \`datafix --help\` cold start (median of ${cs.runs}) | ${Math.round(cs.medianMs)} ms | \`node -e 0\`: ${Math.round(cs.nodeMedianMs)} ms | +${Math.round(cs.medianMs - cs.nodeMedianMs)} ms over bare Node | < 150 ms (< 100 ms) | ${verdict(cs.medianMs < 150, cs.medianMs < 100)} |`,
    );
    if (cs.npxVersionMedianMs !== undefined) {
      const r = cs.npxVersionMedianMs / cs.versionMedianMs;
      lines.push(
        `| \`npx datafix --version\` in the repository (median of ${cs.runs}) | ${Math.round(cs.npxVersionMedianMs)} ms | \`node bin/datafix.js --version\`: ${Math.round(cs.versionMedianMs)} ms | ${x(r)} | ≤ 1.5× (≤ 1.2×) | ${verdict(r <= 1.5, r <= 1.2)} |`,
      );
    }
  }
  lines.push('');

  if (summary.sqlite.length) {
    lines.push(
      'SQLite, `fixes/sync-media-generation-ids.yaml` (a live run with lock, journal and checkpoints, through the library) vs the hand-written better-sqlite3 script (best wall of N alternating rounds; peak RSS is the highest of the rounds):',
    );
    lines.push('');
    lines.push(
      '| Rows (selected / updated) | raw_response | storage | datafix wall | hand-written wall | ratio | CPU (user+sys) datafix / hand-written | journal | datafix CLI (whole process) | CLI / hand-written process | peak RSS datafix / CLI / hand-written | dry run: datafix / hand-written (ratio) / hand-written through the memory map | same end state |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of summary.sqlite) {
      const cli = r.cli
        ? [
            `${s(r.cli.processMs)}`,
            x(r.cli.processMs / r.baselineProcessMs),
            `${mib(r.datafixRssKb)} / ${mib(r.cli.maxRssKb)} / ${mib(r.baselineRssKb)}`,
          ]
        : ['–', '–', `${mib(r.datafixRssKb)} / – / ${mib(r.baselineRssKb)}`];
      const mapped = r.dryMapped ? ` / ${s(r.dryMapped.baselineMs)} mapped` : '';
      const dry = r.dry ? `${s(r.dry.datafixMs)} / ${s(r.dry.baselineMs)} (${x(r.dry.ratio)})${mapped}` : '–';
      lines.push(
        `| ${n(r.rows)} (${n(r.expected.selected)} / ${n(r.expected.updated)}) | ${shapeLabel[r.shape]} | ${r.fs === 'disk' ? meta.diskFs : 'tmpfs (RAM)'} | ${s(r.datafixMs)} | ${s(r.baselineMs)} | ${x(r.ratio)} | ${s(r.datafixCpuMs)} / ${s(r.baselineCpuMs)} | ${(r.journalBytes / 2 ** 20).toFixed(1)} MiB | ${cli[0]} | ${cli[1]} | ${cli[2]} | ${dry} | ${r.verified ? 'yes' : '**NO**'} |`,
      );
    }
    lines.push('');
  }
  if (dy) {
    const sd = dy.sides.seed;
    lines.push(
      `DynamoDB, \`fixes/i2v-thumbnails.yaml\` vs a hand-written best-case script (\`bench/lib/i2v-best.js\`: pages read ahead, BatchGetItem for jobs then sources, conditional UpdateItem kept at 10 in flight, no journal) and the seed's algorithm: ${n(dy.videos)} videos (${n(dy.items)} items with jobs and source images; ${n(dy.expected.updated)} updated, ${n(dy.expected.skipped)} skipped), in-process dynalite behind a proxy adding ${dy.latencyMs} ms per request, concurrency 10 on every side, a fresh table for every run; the seed's algorithm ran once, datafix and the best case ${dy.datafixWallMs.length} times each, alternating, and the median counts (datafix: ${dy.datafixWallMs.map(s).join(', ')}; best case: ${(dy.bestWallMs ?? []).map(s).join(', ')}):`,
    );
    lines.push('');
    lines.push(
      '| Side | wall | requests (by operation) | requests / updated | peak in flight | peak RSS | dynalite busy | same thumbnails |',
    );
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const [name, r] of [
      ['datafix', dy.sides.datafix],
      ['hand-written best case', dy.sides.best],
      ["seed's algorithm", sd],
    ]) {
      if (!r) continue;
      const ops = Object.entries(r.requests)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(', ');
      lines.push(
        `| ${name} | ${s(r.wallMs)} | ${n(r.totalRequests)} (${ops}) | ${(r.totalRequests / dy.expected.updated).toFixed(3)} | ${r.peakInFlight} | ${mib(r.maxRssKb)} | ${Math.round(r.serverBusy * 100)}% | ${dy.verification.ok ? 'yes' : '**NO**'} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Replaces the marked section of `file`: the lines between a line that is exactly START and a
 * line that is exactly END (markers quoted inside prose do not count). Appends one if missing.
 */
export function writeMarkedSection(file, markdown) {
  const block = `${START}\n${markdown.trim()}\n${END}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Performance\n';
  const lines = text.split('\n');
  const a = lines.findIndex((l) => l.trim() === START);
  const b = a >= 0 ? lines.findIndex((l, i) => i > a && l.trim() === END) : -1;
  const next = a >= 0 && b > a ? [...lines.slice(0, a), block, ...lines.slice(b + 1)].join('\n') : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
