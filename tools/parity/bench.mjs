// Times the original @vladmandic/face-api 1.7.15 on tfjs-wasm (Node: SIMD,
// single thread), as the speed anchor for our C benchmark. Prints JSON to stdout.
//
//   node bench.mjs [--faceapi ../../models/face-api-1.7.15] [--runs 3] [--desc-runs 20]
//
// - descriptor: one 150x150 int32 chip -> 128 floats (computeFaceDescriptor;
//   no resize since the chip is already 150x150), median of --desc-runs after warm-up.
// - landmarks: one face crop -> 68 points (detectLandmarks), same protocol.
// - per photo: SSD detection alone and the whole pipeline
//   detectAllFaces().withFaceLandmarks().withFaceDescriptors(), median of --runs
//   after one warm-up pipeline run on sample1.
// Pixels come from djpeg, as in generate.mjs; decoding is not timed.

import os from 'node:os';
import path from 'node:path';
import {
  parseArgs, decodeJpeg, loadFaceApi, imageTensor, median, DEFAULT_FACEAPI_DIR, PHOTOS,
} from './common.mjs';

const USAGE = 'usage: node bench.mjs [--faceapi DIR] [--runs N] [--desc-runs N]';
const now = () => process.hrtime.bigint();
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const round2 = (v) => Math.round(v * 100) / 100;

async function timeIt(n, fn) {
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn();
    t.push(ms(t0));
  }
  return { median: round2(median(t)), min: round2(Math.min(...t)), max: round2(Math.max(...t)), runs: n };
}

async function main() {
  const args = parseArgs(process.argv.slice(2), { faceapi: DEFAULT_FACEAPI_DIR, runs: '3', 'desc-runs': '20' });
  if (args.help) { console.log(USAGE); return; }
  const runs = Number(args.runs); const descRuns = Number(args['desc-runs']);
  if (!(runs >= 1 && descRuns >= 1)) throw new Error(USAGE);
  const faceapiDir = path.resolve(args.faceapi);
  const { faceapi, tf, versions } = await loadFaceApi(path.join(faceapiDir, 'model'),
    ['ssdMobilenetv1', 'faceLandmark68Net', 'faceRecognitionNet']);
  const ssdOptions = new faceapi.SsdMobilenetv1Options();
  const pipeline = (img) => faceapi.detectAllFaces(img, ssdOptions).withFaceLandmarks().withFaceDescriptors();

  const images = PHOTOS.map((file) => ({ file, img: imageTensor(tf, decodeJpeg(path.join(faceapiDir, 'demo', file))) }));

  // Warm-up, and a real face for the single-face timings.
  const first = images[0].img;
  const [H, W] = first.shape;
  const faces = await pipeline(first);
  if (!faces.length) throw new Error('no face found in sample1.jpg');
  const lc = faces[0].detection.box.clipAtImageBorders(W, H);
  const dr = faces[0].landmarks.align(null, { useDlibAlignment: true }).clipAtImageBorders(W, H);
  const cx = Math.min(Math.max(Math.round(dr.x + dr.width / 2) - 75, 0), W - 150);
  const cy = Math.min(Math.max(Math.round(dr.y + dr.height / 2) - 75, 0), H - 150);
  const chip = tf.slice(first, [cy, cx, 0], [150, 150, 3]);
  const lmCrop = tf.slice(first, [lc.y, lc.x, 0], [lc.height, lc.width, 3]);

  const recog = faceapi.nets.faceRecognitionNet;
  const lmNet = faceapi.nets.faceLandmark68Net;
  await timeIt(3, () => recog.computeFaceDescriptor(chip));
  const descriptor = await timeIt(descRuns, () => recog.computeFaceDescriptor(chip));
  await timeIt(3, () => lmNet.detectLandmarks(lmCrop));
  const landmarks = await timeIt(descRuns, () => lmNet.detectLandmarks(lmCrop));

  const photos = [];
  for (const { file, img } of images) {
    let n = 0;
    const ssd = await timeIt(runs, async () => { n = (await faceapi.detectAllFaces(img, ssdOptions)).length; });
    const whole = await timeIt(runs, () => pipeline(img));
    photos.push({ file, width: img.shape[1], height: img.shape[0], faces: n, ssd_ms: ssd, pipeline_ms: whole });
    console.error(`${file}: ${n} faces, ssd ${ssd.median} ms, pipeline ${whole.median} ms (median of ${runs})`);
  }

  const out = {
    tool: 'tools/parity/bench.mjs',
    faceapi: versions.faceapi,
    tfjs: versions.tfjs,
    backend: tf.getBackend(),
    wasm_simd: versions.simd,
    wasm_threads: versions.threads,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    logical_cpus: os.cpus().length,
    descriptor_150_ms: descriptor,
    landmarks_68_ms: { ...landmarks, crop: `${lc.width}x${lc.height}` },
    photos,
    pipeline_ms_median_over_photos: round2(median(photos.map((p) => p.pipeline_ms.median))),
  };
  chip.dispose(); lmCrop.dispose();
  for (const { img } of images) img.dispose();
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => { console.error(`bench.mjs: ${e.stack || e}`); process.exit(1); });
