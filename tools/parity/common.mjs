// Shared helpers for generate.mjs and bench.mjs: command-line flags, the
// libjpeg-turbo decode (djpeg), the pixel hash, and loading the original
// @vladmandic/face-api on the tfjs wasm backend.
//
// Pixels come from `djpeg -ppm` only, never from a JS JPEG decoder: the C
// library decodes with the same libjpeg-turbo at default settings, so both
// sides see identical bytes (a different decoder moves descriptors by up to
// L2 0.13; face-api models fact sheet, section 8).

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_FACEAPI_DIR = path.resolve(SCRIPT_DIR, '../../models/face-api-1.7.15');
export const DEFAULT_OUT_DIR = path.resolve(SCRIPT_DIR, '../../tests/golden');

export const PHOTOS = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg', 'sample5.jpg', 'sample6.jpg'];

const require = createRequire(import.meta.url);

// --name value pairs; unknown flags are an error so typos do not go unnoticed.
export function parseArgs(argv, spec) {
  const out = { ...spec };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { out.help = true; continue; }
    if (!a.startsWith('--')) throw new Error(`unexpected argument: ${a}`);
    const key = a.slice(2);
    if (!(key in spec)) throw new Error(`unknown flag: ${a}`);
    if (i + 1 >= argv.length) throw new Error(`flag ${a} needs a value`);
    out[key] = argv[++i];
  }
  return out;
}

export function djpegVersion() {
  const r = spawnSync('djpeg', ['-version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run djpeg (apt-get install libjpeg-turbo-progs): ${r.error.message}`);
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
}

// Decode a JPEG with `djpeg -ppm` (default settings) and parse the binary PPM.
// Returns { width, height, rgb: Uint8Array (row-major RGB) }.
export function decodeJpeg(file) {
  const r = spawnSync('djpeg', ['-ppm', file], { maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`djpeg failed on ${file}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`djpeg failed on ${file}: ${r.stderr.toString()}`);
  const buf = r.stdout;
  let pos = 0;
  const token = () => {
    for (;;) {
      while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos]))) pos++;
      if (buf[pos] === 0x23) { while (pos < buf.length && buf[pos] !== 0x0a) pos++; continue; } // # comment
      break;
    }
    const start = pos;
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos]))) pos++;
    return buf.toString('latin1', start, pos);
  };
  const magic = token();
  if (magic !== 'P6') throw new Error(`${file}: expected a colour PPM (P6) from djpeg, got ${magic}`);
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  if (!(width > 0 && height > 0 && maxval === 255)) throw new Error(`${file}: bad PPM header ${width}x${height} max ${maxval}`);
  pos++; // the single whitespace byte after maxval
  const n = width * height * 3;
  if (buf.length - pos !== n) throw new Error(`${file}: PPM payload ${buf.length - pos} bytes, expected ${n}`);
  return { width, height, rgb: new Uint8Array(buf.buffer, buf.byteOffset + pos, n) };
}

// FNV-1a 64-bit over bytes, as 16 lowercase hex digits. Two 32-bit halves
// instead of BigInt: prime 0x100000001b3 = 2^40 + 0x1b3, so
// h*p mod 2^64 = h*0x1b3 + (lo << 40).
export function fnv1a64(bytes) {
  let hi = 0xcbf29ce4 >>> 0;
  let lo = 0x84222325 >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    lo = (lo ^ bytes[i]) >>> 0;
    const l = lo * 0x1b3; // < 2^41, exact in a double
    const carry = Math.floor(l / 4294967296);
    hi = (Math.imul(hi, 0x1b3) + ((lo << 8) >>> 0) + carry) >>> 0;
    lo = l >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

export function fnv1a64BigInt(bytes) { // reference for the self-test
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

// The original library: face-api's node-wasm bundle, which requires the
// installed @tensorflow/tfjs + @tensorflow/tfjs-backend-wasm. In Node the wasm
// backend is single-threaded with SIMD (tfjs disables wasm threads on Node).
export async function loadFaceApi(modelDir, nets = ['ssdMobilenetv1', 'faceLandmark68Net', 'faceRecognitionNet', 'tinyFaceDetector']) {
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const { tf } = faceapi;
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  tf.setWasmPaths(wasmDir); // usePlatformFetch=false: Emscripten reads the .wasm with fs
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();
  if (!fs.existsSync(path.join(modelDir, 'ssd_mobilenetv1_model-weights_manifest.json'))) {
    throw new Error(`no face-api weights in ${modelDir}`);
  }
  for (const n of nets) await faceapi.nets[n].loadFromDisk(modelDir);
  const versions = {
    faceapi: faceapi.version,
    tfjs: tf.version_core,
    wasm: tf.version_wasm,
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  };
  return { faceapi, tf, versions };
}

export function imageTensor(tf, img) {
  return tf.tensor3d(Int32Array.from(img.rgb), [img.height, img.width, 3], 'int32');
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
