/**
 * The media table the DynamoDB half of the benchmark runs on: N videos on GSI8 (plus the source
 * images, which are on GSI8 too but under `image#`), their I2V jobs, and the skip cases of the
 * real data. Deterministic for a given (videos, seed).
 *
 * Partial fills are included only where the seed's algorithm and datafix agree (the video lacks
 * exactly what the source has). Where the video already has one field and the source has both,
 * the seed overwrites it and datafix by design does not, so the end states would differ.
 */
import { mediaItems } from '../../dist/demo/local-dynamo.js';
import { createRandom } from './random.js';

/** Video kinds and their share, in percent. */
export const VIDEO_MIX = [
  { kind: 'full_copy', pct: 74, outcome: 'updated' },
  { kind: 'fill_missing_urls', pct: 4, outcome: 'updated' }, // video has thumbnailUrl, source only thumbnailUrls
  { kind: 'source_only_url', pct: 2, outcome: 'updated' }, // source has only thumbnailUrl
  { kind: 'already_has_thumbnails', pct: 7, outcome: 'already_has_thumbnails' },
  { kind: 'no_i2v_job_found', pct: 6, outcome: 'no_i2v_job_found' }, // text-to-video: no job
  { kind: 'source_media_not_found', pct: 3, outcome: 'source_media_not_found' },
  { kind: 'source_has_no_thumbnails', pct: 4, outcome: 'source_has_no_thumbnails' },
];

const urls = (id) => ({
  thumbnailUrl: `https://cdn.example.com/media/${id}/thumbnail.jpg`,
  thumbnailUrls: {
    small: `https://cdn.example.com/media/${id}/thumb_320.jpg`,
    medium: `https://cdn.example.com/media/${id}/thumb_640.jpg`,
    large: `https://cdn.example.com/media/${id}/thumb_1280.jpg`,
    originalSize: `https://cdn.example.com/media/${id}/thumb_full.jpg`,
  },
});

/** Returns { items, expected } for `videos` videos. */
export function generateMediaItems(videos, seed = 424242) {
  const rnd = createRandom(seed);
  const cumulative = [];
  let acc = 0;
  for (const k of VIDEO_MIX) {
    acc += k.pct;
    cumulative.push([acc / 100, k]);
  }
  const pick = () => {
    const x = rnd.next();
    for (const [upTo, k] of cumulative) if (x < upTo) return k;
    return VIDEO_MIX[0];
  };
  const expected = { videos, updated: 0, skipped: 0, reasons: {} };
  const cases = [];
  const start = Date.parse('2025-03-01T00:00:00.000Z');
  for (let i = 0; i < videos; i++) {
    const k = pick();
    if (k.outcome === 'updated') expected.updated++;
    else {
      expected.skipped++;
      expected.reasons[k.outcome] = (expected.reasons[k.outcome] ?? 0) + 1;
    }
    const id = rnd.uuid();
    const sourceId = rnd.uuid();
    const createdAt = new Date(start + i * 61_000 + rnd.int(60_000)).toISOString();
    const common = {
      userId: `user-${rnd.int(200)}`,
      filename: `${id}.mp4`,
      mimeType: 'video/mp4',
      size: 1_000_000 + rnd.int(50_000_000),
      width: 1280,
      height: 720,
      duration: 5 + rnd.int(6),
      status: 'uploaded',
      url: `https://cdn.example.com/media/${id}/video.mp4`,
      prompt: `an i2v generation number ${i}`,
    };
    const image = (attrs) => ({ mimeType: 'image/jpeg', width: 1024, height: 1024, status: 'uploaded', ...attrs });
    let c;
    switch (k.kind) {
      case 'full_copy':
        c = { sourceId, source: image(urls(sourceId)), video: common };
        break;
      case 'fill_missing_urls':
        c = {
          sourceId,
          source: image({ thumbnailUrls: urls(sourceId).thumbnailUrls }),
          video: { ...common, thumbnailUrl: urls(id).thumbnailUrl },
        };
        break;
      case 'source_only_url':
        c = { sourceId, source: image({ thumbnailUrl: urls(sourceId).thumbnailUrl }), video: common };
        break;
      case 'already_has_thumbnails':
        c = { sourceId, source: image(urls(sourceId)), video: { ...common, ...urls(id) } };
        break;
      case 'no_i2v_job_found':
        c = { video: common };
        break;
      case 'source_media_not_found':
        c = { sourceId, video: common };
        break;
      default:
        c = { sourceId, source: image({}), video: common };
    }
    cases.push({ id, createdAt, ...c });
  }
  const items = mediaItems(cases);
  return { items, expected };
}
