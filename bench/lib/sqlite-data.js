/**
 * Generates the VEO3 database the SQLite half of the benchmark runs on: `veo3_video_generations`
 * with realistic ~1–2 KB raw_response JSON in every shape FACTS.md lists (direct and
 * `raw`-wrapped, id at the top level of the operation or only nested under
 * operation.metadata.video, an empty top-level id that falls back to the nested one), a few
 * percent of invalid JSON, a few percent with no id at all, and rows the fix must not select
 * (raw_response NULL, media_generation_id already set).
 *
 * The data is a pure function of (rows, seed): every run and both sides see the same bytes.
 */
import Database from 'better-sqlite3';
import { VEO3_SCHEMA } from '../../dist/demo/sqlite-sample.js';
import { createRandom } from './random.js';

const WORDS = (
  'a cinematic slow aerial drone shot over misty mountains at golden hour with soft volumetric light ' +
  'close up portrait of an elderly fisherman smiling weathered hands holding a net neon city street ' +
  'at night rain reflections people walking with umbrellas camera dolly forward a golden retriever ' +
  'running through a field of sunflowers in slow motion underwater coral reef colorful fish sunbeams ' +
  'timelapse of clouds rolling over a desert canyon handheld documentary style vintage film grain ' +
  'warm tones shallow depth of field 35mm anamorphic lens flare dramatic orchestral mood'
).split(' ');

/** Row kinds and their share of the table, in percent. */
export const ROW_MIX = [
  // Not selected by the fix (it must leave them alone).
  { kind: 'already_set', pct: 3, selected: false },
  { kind: 'null_response', pct: 1, selected: false },
  // Selected, but nothing to write.
  { kind: 'invalid_json', pct: 3, outcome: 'failed' },
  { kind: 'no_id', pct: 3, outcome: 'skipped' },
  // Selected and updated, by where the id sits.
  { kind: 'direct_top_and_nested', pct: 33, outcome: 'updated' },
  { kind: 'direct_nested_only', pct: 14, outcome: 'updated' },
  { kind: 'direct_top_only', pct: 8, outcome: 'updated' },
  { kind: 'direct_empty_top_nested', pct: 1, outcome: 'updated' },
  { kind: 'raw_top_and_nested', pct: 17, outcome: 'updated' },
  { kind: 'raw_nested_only', pct: 10, outcome: 'updated' },
  { kind: 'raw_top_only', pct: 6, outcome: 'updated' },
  { kind: 'raw_empty_top_nested', pct: 1, outcome: 'updated' },
];

function kindPicker() {
  const table = [];
  let acc = 0;
  for (const k of ROW_MIX) {
    acc += k.pct;
    table.push([acc / 100, k]);
  }
  return (x) => {
    for (const [upTo, k] of table) if (x < upTo) return k;
    return ROW_MIX[ROW_MIX.length - 1];
  };
}

/**
 * What a row's raw_response looks like:
 * - `standard`: the real API response, about 1.6 KB (signed URLs, prompt, metadata);
 * - `light`: the same shapes with nothing else, about 150 B: the engine's own per-record cost shows;
 * - `huge`: the standard response plus a 5 MiB `debug` string, for memory bounded by bytes.
 */
export const SHAPES = ['standard', 'light', 'huge'];

/** The `huge` shape's extra bytes per row. */
export const HUGE_ROW_BYTES = 5 * 2 ** 20;

/**
 * Writes a fresh database with `rows` rows at `path` (one prepared INSERT, one transaction per
 * 50k rows, journal off while loading) and returns the expected outcome counts of one fix run.
 * `shape` is one of SHAPES; the mix of row kinds, and so the expected counts, is the same for all.
 */
export function generateVeo3Database(path, rows, { seed = 20250601, shape = 'standard' } = {}) {
  if (!SHAPES.includes(shape)) throw new Error(`unknown shape ${shape}`);
  const rnd = createRandom(seed);
  const pickKind = kindPicker();
  // Signed-URL signatures are long base64 blobs; a pool keeps generation fast at 1M rows.
  const signatures = Array.from({ length: 512 }, () => rnd.alnum(200));
  const prompt = () => {
    const n = 8 + rnd.int(33);
    const words = [];
    for (let i = 0; i < n; i++) words.push(rnd.pick(WORDS));
    return words.join(' ');
  };
  const signedUrl = (kind, id, expires) =>
    `https://storage.googleapis.com/ai-sandbox-videofx/${kind}/${id}?GoogleAccessId=labs-ai-sandbox-videoserver-prod@system.gserviceaccount.com&Expires=${expires}&Signature=${rnd.pick(signatures)}%3D%3D`;

  const db = new Database(path);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.exec('DROP TABLE IF EXISTS veo3_video_generations');
  db.exec(VEO3_SCHEMA);
  const insert = db.prepare(
    `INSERT INTO veo3_video_generations (id, prompt, status, raw_response, media_generation_id, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, '2025-06-01T10:00:00.000Z')`,
  );
  const expected = { rows, selected: 0, updated: 0, skipped: 0, failed: 0, byKind: {} };
  const start = Date.parse('2025-01-01T00:00:00.000Z');

  const makeRow = (i) => {
    const k = pickKind(rnd.next());
    expected.byKind[k.kind] = (expected.byKind[k.kind] ?? 0) + 1;
    if (k.selected !== false) {
      expected.selected++;
      expected[k.outcome]++;
    }
    const id = rnd.uuid();
    const createdAt = new Date(start + i * 7_000).toISOString();
    const text = prompt();
    const mediaId = `CAUSJGI4${rnd.alnum(24)}${i.toString(36).padStart(6, '0')}${rnd.alnum(44)}`;
    const sceneId = rnd.uuid();
    const expires = 1750000000 + i;
    const video = {
      seed: rnd.int(100000),
      mediaGenerationId: mediaId,
      prompt: text,
      fifeUrl: signedUrl('video', rnd.uuid(), expires),
      mediaVisibility: 'PRIVATE',
      servingBaseUri: signedUrl('image', rnd.uuid(), expires),
      isLooped: false,
      model: rnd.pick(['veo_3_0_t2v_fast', 'veo_3_0_t2v', 'veo_3_0_r2v_fast']),
      aspectRatio: rnd.pick(['VIDEO_ASPECT_RATIO_LANDSCAPE', 'VIDEO_ASPECT_RATIO_PORTRAIT']),
    };
    const metadata = { '@type': 'type.googleapis.com/google.internal.labs.aisandbox.v1.Media', name: rnd.hex(32), video };
    const operation = { operation: { name: rnd.hex(32), metadata }, sceneId };
    let status = 'completed';
    let op;
    switch (k.kind) {
      case 'no_id':
        status = 'failed';
        delete video.mediaGenerationId;
        op = { ...operation, status: 'MEDIA_GENERATION_STATUS_FAILED', error: { code: 3, message: 'PUBLIC_ERROR_UNSAFE_GENERATION' } };
        break;
      case 'direct_nested_only':
      case 'raw_nested_only':
        op = { ...operation, status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL' };
        break;
      case 'direct_top_only':
      case 'raw_top_only':
        delete video.mediaGenerationId;
        op = { ...operation, mediaGenerationId: mediaId, status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL' };
        break;
      case 'direct_empty_top_nested':
      case 'raw_empty_top_nested':
        op = { ...operation, mediaGenerationId: '', status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL' };
        break;
      default:
        op = { ...operation, mediaGenerationId: mediaId, status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL' };
    }
    const body =
      shape === 'light'
        ? { operations: [lightOperation(op, k.kind === 'no_id')] }
        : { operations: [op], remainingCredits: 1000 + rnd.int(9000), ...(shape === 'huge' ? { debug: hugePadding() } : {}) };
    let raw = JSON.stringify(k.kind.startsWith('raw_') ? { raw: body, receivedAt: createdAt } : body);
    if (k.kind === 'invalid_json') raw = raw.slice(0, Math.min(raw.length - 2, 200 + rnd.int(600))); // a truncated response
    if (k.kind === 'null_response') raw = null;
    const mgid = k.kind === 'already_set' ? `EXISTING-${mediaId}` : null;
    return [id, text.slice(0, 120), status, raw, mgid, createdAt];
  };

  // The light shape keeps only the fields the fix reads, at the same places, with shorter ids.
  const lightOperation = (op, failed) => {
    const id = (v) => (typeof v === 'string' && v !== '' ? v.slice(0, 8) + v.slice(-16) : v);
    const nested = op.operation.metadata.video.mediaGenerationId;
    return {
      ...(op.mediaGenerationId !== undefined ? { mediaGenerationId: id(op.mediaGenerationId) } : {}),
      operation: { metadata: { video: nested === undefined ? {} : { mediaGenerationId: id(nested) } } },
      status: failed ? 'FAILED' : 'OK',
    };
  };
  let padding;
  const hugePadding = () => {
    padding ??= rnd.alnum(4096).repeat(HUGE_ROW_BYTES / 4096);
    return padding;
  };

  const chunk = shape === 'huge' ? 20 : 50_000;
  const load = db.transaction((from, to) => {
    for (let i = from; i < to; i++) insert.run(...makeRow(i));
  });
  for (let i = 0; i < rows; i += chunk) load(i, Math.min(rows, i + chunk));
  db.pragma('journal_mode = DELETE');
  db.close();
  return expected;
}
