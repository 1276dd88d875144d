// Produces the golden files tests/golden/faceapi_demo.json and
// tests/golden/README.md: what the original @vladmandic/face-api 1.7.15
// (tfjs 4.22.0, wasm backend) computes on face-api's demo photos, decoded by
// libjpeg-turbo's djpeg so the C tests can feed the very same pixels.
//
//   cd tools/parity && npm ci
//   node generate.mjs --faceapi ../../models/face-api-1.7.15 --out ../../tests/golden
//
// --faceapi is the unpacked face-api npm package (model/ and demo/ are read
// from it); the JS code that runs is the version pinned in package.json.
// Timings go to stderr.

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  parseArgs, decodeJpeg, djpegVersion, fnv1a64, fnv1a64BigInt, loadFaceApi, imageTensor,
  DEFAULT_FACEAPI_DIR, DEFAULT_OUT_DIR, PHOTOS,
} from './common.mjs';

const EXPECTED_FACES = [3, 3, 3, 4, 5, 4]; // SSD, default options, sample1..6
const DESCRIPTOR_TOL = 1e-6; // pipeline vs. our own crop, max abs per component
const CHIP = 150;

const USAGE = `usage: node generate.mjs --faceapi DIR --out DIR
  --faceapi  unpacked @vladmandic/face-api 1.7.15 package (with model/ and demo/)
             default: ../../models/face-api-1.7.15 (relative to this script)
  --out      golden folder to write; default: ../../tests/golden`;

const log = (...a) => console.error(...a);
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// ---- number formatting ---------------------------------------------------
// float32 values get the shortest decimal that reads back as the same
// float32; other (double) values are printed as JS prints them, which
// round-trips the double exactly.
function num(v) {
  if (!Number.isFinite(v)) throw new Error(`non-finite value ${v}`);
  if (Number.isInteger(v)) return String(v);
  if (Math.fround(v) === v) {
    for (let p = 1; p <= 9; p++) {
      const s = Number(v.toPrecision(p));
      if (Math.fround(s) === v) return String(s);
    }
  }
  return String(v);
}
const rect = (r) => `{"x": ${num(r.x)}, "y": ${num(r.y)}, "w": ${num(r.w)}, "h": ${num(r.h)}}`;
const vec = (a) => `[${Array.from(a, num).join(', ')}]`;
const points = (ps) => `[${ps.map((p) => `[${num(p.x)}, ${num(p.y)}]`).join(', ')}]`;

// ---- the dlib-alignment arithmetic, independently (fact sheet 1.4 step 3) --
function factSheetAlignRect(pos, lcW, lcH) {
  const mean = (a, b) => {
    let x = 0; let y = 0;
    for (let i = a; i <= b; i++) { x += pos[i].x; y += pos[i].y; }
    return { x: x / (b - a + 1), y: y / (b - a + 1) };
  };
  const L = mean(36, 41); const R = mean(42, 47); const M = mean(48, 67);
  const d = (p, q) => Math.hypot(p.x - q.x, p.y - q.y);
  const size = Math.floor(((d(M, L) + d(M, R)) / 2) / 0.45);
  const c = { x: (L.x + R.x + M.x) / 3, y: (L.y + R.y + M.y) / 3 };
  const x = Math.floor(Math.max(0, c.x - 0.5 * size));
  const y = Math.floor(Math.max(0, c.y - 0.43 * size));
  return { x, y, w: Math.min(size, lcW + x), h: Math.min(size, lcH + y) };
}

// Box.clipAtImageBorders, independently (fact sheet 0.2).
function factSheetClip(r, W, H) {
  const cx = Math.max(r.x, 0); const cy = Math.max(r.y, 0);
  const w = Math.min(r.x + r.w - cx, W - cx); const h = Math.min(r.y + r.h - cy, H - cy);
  return { x: Math.floor(cx), y: Math.floor(cy), w: Math.floor(w), h: Math.floor(h) };
}

const asRect = (b) => ({ x: b.x, y: b.y, w: b.width, h: b.height });
const sameRect = (a, b) => a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h;
const maxAbsDiff = (a, b) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const norm = (a) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function descriptorOfSlice(faceapi, tf, img, r) {
  const crop = tf.slice(img, [r.y, r.x, 0], [r.h, r.w, 3]);
  try {
    return Float32Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(crop));
  } finally {
    crop.dispose();
  }
}

async function processPhoto(faceapi, tf, faceapiDir, file, checks) {
  const jpeg = path.join(faceapiDir, 'demo', file);
  let t0 = process.hrtime.bigint();
  const px = decodeJpeg(jpeg);
  const W = px.width; const H = px.height;
  const hash = fnv1a64(px.rgb);
  const tDecode = ms(t0);
  const img = imageTensor(tf, px);
  const photo = { file, width: W, height: H, fnv1a64: hash, jpeg_sha256: sha256(jpeg), ssd: [], tiny: [] };

  // Whole SSD pipeline exactly as a face-api user writes it.
  t0 = process.hrtime.bigint();
  const results = await faceapi.detectAllFaces(img, new faceapi.SsdMobilenetv1Options())
    .withFaceLandmarks().withFaceDescriptors();
  const tPipeline = ms(t0);

  t0 = process.hrtime.bigint();
  for (const r of results) {
    const det = r.detection;
    const box = asRect(det.box);
    // Landmark crop (fact sheet 1.4 step 2): what extractFaceTensors cut for the landmark net.
    const lc = asRect(det.box.clipAtImageBorders(W, H));
    const lm = r.landmarks;
    if (lm.imageWidth !== lc.w || lm.imageHeight !== lc.h) throw new Error(`${file}: landmark crop dims mismatch`);
    if (lm.shift.x !== box.x || lm.shift.y !== box.y) throw new Error(`${file}: landmark shift is not the detection origin`);
    const pos = lm.positions;
    if (pos.length !== 68) throw new Error(`${file}: ${pos.length} landmarks`);

    // Descriptor crop, as ComputeAllFaceDescriptorsTask does it: align(null,
    // {useDlibAlignment}) -> Rect, then extractFaceTensors clips it.
    const alignBox = lm.align(null, { useDlibAlignment: true });
    const align = asRect(alignBox);
    const dr = asRect(alignBox.clipAtImageBorders(W, H));
    const fsAlign = factSheetAlignRect(pos, lc.w, lc.h);
    const fsDr = factSheetClip(fsAlign, W, H);
    if (!sameRect(fsAlign, align) || !sameRect(fsDr, dr)) {
      checks.arithmetic.push(`${file}: face-api ${rect(dr)} vs fact sheet ${rect(fsDr)}`);
    }
    if (!(dr.w > 0 && dr.h > 0)) throw new Error(`${file}: empty descriptor crop`);

    // Verify: our own slice of the same pixels through the recognition net alone.
    const desc = await descriptorOfSlice(faceapi, tf, img, dr);
    const diff = maxAbsDiff(desc, r.descriptor);
    checks.maxDescriptorDiff = Math.max(checks.maxDescriptorDiff, diff);
    if (!(diff <= DESCRIPTOR_TOL)) throw new Error(`${file}: standalone descriptor differs from the pipeline's by ${diff}`);

    // A 150x150 window around the descriptor crop's centre: no resize needed.
    const cx = dr.x + dr.w / 2; const cy = dr.y + dr.h / 2;
    const chip = {
      x: Math.min(Math.max(Math.round(cx) - CHIP / 2, 0), W - CHIP),
      y: Math.min(Math.max(Math.round(cy) - CHIP / 2, 0), H - CHIP),
      w: CHIP,
      h: CHIP,
    };
    const chipDesc = await descriptorOfSlice(faceapi, tf, img, chip);

    checks.norms.push(norm(desc));
    checks.chipNorms.push(norm(chipDesc));
    photo.ssd.push({
      box, score: det.score, landmark_rect: lc, landmarks: pos, landmarks_relative: lm.relativePositions,
      align_rect: align, descriptor_rect: dr, descriptor: desc, chip150_rect: chip, chip150_descriptor: chipDesc,
    });
  }
  const tVerify = ms(t0);

  t0 = process.hrtime.bigint();
  const tiny = await faceapi.detectAllFaces(img, new faceapi.TinyFaceDetectorOptions());
  const tTiny = ms(t0);
  for (const d of tiny) photo.tiny.push({ box: asRect(d.box), score: d.score });

  img.dispose();
  log(`${file}: ${W}x${H} fnv1a64 ${hash}  ssd faces ${results.length}, tiny ${tiny.length}  | decode ${tDecode.toFixed(0)} ms, `
    + `ssd+landmarks+descriptors ${tPipeline.toFixed(0)} ms, verify+chips ${tVerify.toFixed(0)} ms, tiny ${tTiny.toFixed(0)} ms`);
  return { photo, tPipeline };
}

function renderJson(meta, photos) {
  const L = [];
  L.push('{');
  for (const [k, v] of Object.entries(meta)) {
    if (v && typeof v === 'object') {
      L.push(`  ${JSON.stringify(k)}: {`);
      const e = Object.entries(v);
      e.forEach(([k2, v2], i) => L.push(`    ${JSON.stringify(k2)}: ${JSON.stringify(v2)}${i + 1 < e.length ? ',' : ''}`));
      L.push('  },');
    } else {
      L.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
    }
  }
  L.push('  "photos": [');
  photos.forEach((p, pi) => {
    L.push('    {');
    L.push(`      "file": ${JSON.stringify(p.file)}, "width": ${p.width}, "height": ${p.height}, "fnv1a64": "${p.fnv1a64}",`);
    L.push(`      "jpeg_sha256": "${p.jpeg_sha256}",`);
    L.push('      "ssd": [');
    p.ssd.forEach((f, fi) => {
      L.push('        {');
      L.push(`          "box": ${rect(f.box)}, "score": ${num(f.score)},`);
      L.push(`          "landmark_rect": ${rect(f.landmark_rect)},`);
      L.push(`          "landmarks": ${points(f.landmarks)},`);
      L.push(`          "landmarks_relative": ${points(f.landmarks_relative)},`);
      L.push(`          "align_rect": ${rect(f.align_rect)}, "descriptor_rect": ${rect(f.descriptor_rect)},`);
      L.push(`          "descriptor": ${vec(f.descriptor)},`);
      L.push(`          "chip150_rect": ${rect(f.chip150_rect)},`);
      L.push(`          "chip150_descriptor": ${vec(f.chip150_descriptor)}`);
      L.push(`        }${fi + 1 < p.ssd.length ? ',' : ''}`);
    });
    L.push('      ],');
    L.push('      "tiny": [');
    p.tiny.forEach((d, di) => L.push(`        {"box": ${rect(d.box)}, "score": ${num(d.score)}}${di + 1 < p.tiny.length ? ',' : ''}`));
    L.push('      ]');
    L.push(`    }${pi + 1 < photos.length ? ',' : ''}`);
  });
  L.push('  ]');
  L.push('}');
  return `${L.join('\n')}\n`;
}

function renderReadme(meta, photos, normRange) {
  const chipRows = [];
  const photoRows = [];
  for (const p of photos) {
    photoRows.push(`| ${p.file} | ${p.width}x${p.height} | \`${p.fnv1a64}\` | ${p.ssd.length} | ${p.tiny.length} |`);
    p.ssd.forEach((f, i) => {
      const r = f.descriptor_rect; const c = f.chip150_rect;
      chipRows.push(`| ${p.file} | ${i} | ${r.x}, ${r.y}, ${r.w}x${r.h} | ${c.x}, ${c.y}, 150x150 |`);
    });
  }
  return `# Golden files

Reference outputs of the original library, for the C tests to compare against.
Generated by \`tools/parity/generate.mjs\`; do not edit by hand.

## faceapi_demo.json

What **@vladmandic/face-api ${meta.faceapi}** computes, on **tfjs ${meta.tfjs}** with the
**${meta.backend}** backend (SIMD, single thread), for face-api's six demo photos
\`demo/sample1.jpg\` ... \`sample6.jpg\`.

The photos are decoded with libjpeg-turbo's \`djpeg -ppm\` at default settings
(${meta.decoder_version}), the same decoder and settings the C library uses, so both
sides work on identical pixels. The decoded RGB bytes go into face-api as an int32
\`[H,W,3]\` tensor. Another JPEG decoder (e.g. jpeg-js) gives pixels that differ
enough to move landmarks by pixels and descriptors by up to L2 0.13, so a C test
must first prove it has the same pixels (\`fnv1a64\`).

### Regenerating

\`\`\`sh
cd tools/parity && npm ci && node generate.mjs --faceapi ../../models/face-api-1.7.15 --out ../../tests/golden
\`\`\`

\`--faceapi\` is the unpacked face-api ${meta.faceapi} npm package (its \`model/\` and
\`demo/\` folders are read); the JavaScript that runs is the version pinned in
\`tools/parity/package-lock.json\`. Needs Node 18+ and \`djpeg\` (Debian/Ubuntu:
\`libjpeg-turbo-progs\`). Runs offline once \`npm ci\` has installed the packages.
The output is deterministic: rerunning gives byte-identical files.

The generator checks, and fails otherwise: the SSD face counts per photo are
${EXPECTED_FACES.join(', ')}; for every face, slicing \`descriptor_rect\` out of the
pixels and running only the recognition net gives the pipeline's descriptor
(max abs difference ≤ 1e-6; it is 0 in practice).

### Contents

Top level: versions, \`models\` (SHA-256 of the weight files used) and \`photos\`.
Per photo:

- \`width\`, \`height\`, \`fnv1a64\`: size of the decoded image and FNV-1a 64-bit hash
  (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of its raw RGB bytes,
  row-major, 3 bytes per pixel. A C test must reproduce this hash before it compares
  anything else. \`jpeg_sha256\` identifies the source file.
- \`ssd\`: \`detectAllFaces(img, new SsdMobilenetv1Options()).withFaceLandmarks().withFaceDescriptors()\`
  with default options (minConfidence 0.5, maxResults 100), in face-api's output
  order (descending score). Per face:
  - \`box\`: the detection in image pixels (floats, full double precision), \`score\`.
  - \`landmark_rect\`: the integer crop fed to the 68-point landmark net
    (\`box.clipAtImageBorders(W,H)\`).
  - \`landmarks\`: the 68 absolute points as face-api reports them
    (relative · landmark_rect size + box origin, i.e. shifted by the *unfloored* box origin).
  - \`landmarks_relative\`: the same points relative to \`landmark_rect\` (about 0..1; points
    may fall slightly outside), i.e. the decoded landmark-net output, as face-api's
    \`relativePositions\` recovers it in double arithmetic.
  - \`align_rect\`: \`landmarks.align(null, {useDlibAlignment: true})\` (integers, may extend
    past the image); \`descriptor_rect\`: that rect after \`clipAtImageBorders\`, the integer
    crop face-api resizes to 150x150 (zero-padded to square first) for the recognition net.
  - \`descriptor\`: the 128-d descriptor of that crop (raw, not L2-normalized; norms ${normRange}).
  - \`chip150_rect\`, \`chip150_descriptor\`: a second test input that needs no resize: the
    150x150 window of the photo whose top-left is (round(cx)-75, round(cy)-75), where
    (cx, cy) is the centre of \`descriptor_rect\`, shifted to stay inside the image; and
    the recognition net's output on exactly those pixels.
- \`tiny\`: \`detectAllFaces(img, new TinyFaceDetectorOptions())\` (inputSize 416,
  scoreThreshold 0.5): \`box\` in image pixels and \`score\`, in face-api's output order (descending score).

Rects are \`{x, y, w, h}\`: top-left corner, width, height, in pixels of the decoded
photo; integer rects cover rows y..y+h-1 and columns x..x+w-1.

Numbers: float32 values (scores, descriptors) are written with the shortest decimal
that reads back as the same float32; values face-api computes in double (boxes,
landmarks) are written as JavaScript prints doubles (exact round trip).

### Photos

| photo | size | fnv1a64 of RGB | SSD faces | tiny faces |
|---|---|---|---|---|
${photoRows.join('\n')}

### Chips

The recognition-net inputs, as (x, y, w x h) in the photo:

| photo | face | descriptor_rect (resized to 150x150 by face-api) | chip150_rect (used as is) |
|---|---|---|---|
${chipRows.join('\n')}

## Credit and licence

Photos (\`demo/sample1..6.jpg\`) and network weights (\`model/\`) are from
[@vladmandic/face-api](https://github.com/vladmandic/face-api) ${meta.faceapi}, MIT licence,
Copyright (c) Vladimir Mandic. The photos themselves are **not** committed: they are taken
from the npm package at set-up time (\`models/face-api-1.7.15\`). Only the numbers
derived from them are stored here.
`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2), { faceapi: DEFAULT_FACEAPI_DIR, out: DEFAULT_OUT_DIR });
  if (args.help) { console.log(USAGE); return; }
  const faceapiDir = path.resolve(args.faceapi);
  const outDir = path.resolve(args.out);
  const wall0 = process.hrtime.bigint();

  // FNV self-test against a BigInt reference.
  const probe = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + (i >> 3)) & 255);
  if (fnv1a64(probe) !== fnv1a64BigInt(probe) || fnv1a64(new Uint8Array(0)) !== 'cbf29ce484222325'
    || fnv1a64(new TextEncoder().encode('a')) !== 'af63dc4c8601ec8c') {
    throw new Error('fnv1a64 self-test failed');
  }

  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(faceapiDir, 'package.json'), 'utf8'));
    if (pkg.version !== '1.7.15') log(`warning: ${faceapiDir} is face-api ${pkg.version}, expected 1.7.15`);
  } catch { /* a bare model/ + demo/ folder is fine too */ }

  const decoderVersion = djpegVersion();
  const { faceapi, tf, versions } = await loadFaceApi(path.join(faceapiDir, 'model'));
  log(`face-api ${versions.faceapi}, tfjs ${versions.tfjs}, backend ${tf.getBackend()} `
    + `(simd ${versions.simd}, threads ${versions.threads}), ${decoderVersion}`);
  if (versions.faceapi !== '1.7.15' || versions.tfjs !== '4.22.0' || tf.getBackend() !== 'wasm') {
    throw new Error('wrong face-api / tfjs version or backend; run npm ci in tools/parity');
  }

  const models = {};
  for (const f of ['ssd_mobilenetv1_model.bin', 'face_landmark_68_model.bin', 'face_recognition_model.bin', 'tiny_face_detector_model.bin']) {
    models[f] = sha256(path.join(faceapiDir, 'model', f));
  }

  const checks = { maxDescriptorDiff: 0, norms: [], chipNorms: [], arithmetic: [] };
  const photos = [];
  const pipelineMs = [];
  for (const file of PHOTOS) {
    const { photo, tPipeline } = await processPhoto(faceapi, tf, faceapiDir, file, checks);
    photos.push(photo);
    pipelineMs.push(tPipeline);
  }

  const counts = photos.map((p) => p.ssd.length);
  if (counts.join() !== EXPECTED_FACES.join()) {
    throw new Error(`SSD face counts ${counts.join(',')}, expected ${EXPECTED_FACES.join(',')}`);
  }
  const range = (a) => `${Math.min(...a).toFixed(3)}-${Math.max(...a).toFixed(3)}`;

  const meta = {
    generator: 'tools/parity/generate.mjs',
    faceapi: versions.faceapi,
    tfjs: versions.tfjs,
    backend: 'wasm',
    decoder: 'libjpeg-turbo djpeg -ppm (default settings)',
    decoder_version: decoderVersion,
    models,
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'faceapi_demo.json'), renderJson(meta, photos));
  fs.writeFileSync(path.join(outDir, 'README.md'), renderReadme(meta, photos, range(checks.norms)));

  log(`faces per photo ${counts.join(',')} (${counts.reduce((a, b) => a + b, 0)} total); descriptor norms ${range(checks.norms)} (chip150 ${range(checks.chipNorms)}); `
    + `pipeline vs standalone descriptor max |diff| ${checks.maxDescriptorDiff}`);
  log(checks.arithmetic.length
    ? `descriptor rect differs from the fact-sheet arithmetic:\n  ${checks.arithmetic.join('\n  ')}`
    : 'descriptor rects match the fact-sheet arithmetic (section 1.4) for every face');
  log(`pipeline ms per photo: ${pipelineMs.map((t) => t.toFixed(0)).join(', ')}; wall time ${(ms(wall0) / 1000).toFixed(1)} s`);
  log(`wrote ${path.join(outDir, 'faceapi_demo.json')} and README.md`);
}

main().catch((e) => { console.error(`generate.mjs: ${e.stack || e}`); process.exit(1); });
