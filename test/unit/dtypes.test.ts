import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byteLengthOf, decodeFloats, encodeFloats, f32ToBf16Bits, f32ToF16Bits, roundToDtype } from '../../src/core/dtypes';

function u16bytes(bits: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(bits).buffer);
}

test('F16: every bit pattern decodes and re-encodes to itself (NaNs stay NaN)', () => {
  const all = Array.from({ length: 65536 }, (_, i) => i);
  const decoded = decodeFloats('F16', u16bytes(all));
  for (let h = 0; h < 65536; h++) {
    const v = decoded[h];
    if (Number.isNaN(v)) {
      assert.ok(Number.isNaN(decoded[f32ToF16Bits(v)]), `NaN ${h}`);
      continue;
    }
    assert.equal(f32ToF16Bits(v), h, `half 0x${h.toString(16)} -> ${v}`);
  }
});

test('BF16: every bit pattern decodes and re-encodes to itself', () => {
  const all = Array.from({ length: 65536 }, (_, i) => i);
  const decoded = decodeFloats('BF16', u16bytes(all));
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(decoded[h])) continue;
    assert.equal(f32ToBf16Bits(decoded[h]), h);
  }
});

test('BF16 fast paths: aligned decode and float32 encode equal the byte-by-byte and per-value paths', () => {
  const all = u16bytes(Array.from({ length: 65536 }, (_, i) => i));
  // At an odd offset the decoder reads byte by byte; at an even one through a 16-bit view.
  const odd = new Uint8Array(all.length + 1);
  odd.set(all, 1);
  const slow = decodeFloats('BF16', odd.subarray(1));
  const fast = decodeFloats('BF16', all);
  assert.deepEqual(new Uint32Array(fast.buffer), new Uint32Array(slow.buffer));
  // Every float32 near the bf16 rounding boundaries (ties both ways, NaNs, infinities, -0) and random patterns.
  const bits = new Uint32Array(65536 * 4);
  let seed = 12345;
  for (let h = 0; h < 65536; h++) {
    bits[4 * h] = (h << 16) | 0x8000; // a tie
    bits[4 * h + 1] = (h << 16) | 0x7fff;
    bits[4 * h + 2] = (h << 16) | 0x8001;
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    bits[4 * h + 3] = seed;
  }
  const f = new Float32Array(bits.buffer);
  const encoded = encodeFloats('BF16', f);
  const perValue = encodeFloats('BF16', Array.from(f));
  assert.deepEqual(encoded, perValue);
  for (let i = 0; i < f.length; i += 997) assert.equal(encoded[2 * i] | (encoded[2 * i + 1] << 8), f32ToBf16Bits(f[i]));
});

test('F16 encode rounds to nearest, ties to even, overflows to infinity, keeps subnormals', () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1).
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(65520), 0x7c00); // halfway to 2^16 rounds to even = infinity
  assert.equal(f32ToF16Bits(-Infinity), 0xfc00);
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie at half the smallest subnormal: even = 0
  assert.equal(f32ToF16Bits(1.5 * 2 ** -24), 0x0002); // tie between 1 and 2 subnormal units: even = 2
  assert.equal(f32ToF16Bits(-0), 0x8000);
  assert.equal(f32ToF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
});

test('BF16 encode rounds to nearest, ties to even', () => {
  assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
  assert.equal(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.ok(Number.isNaN(decodeFloats('BF16', u16bytes([f32ToBf16Bits(NaN)]))[0]));
});

test('F8_E4M3 (fn) and F8_E5M2 decode exactly', () => {
  const e4 = decodeFloats('F8_E4M3', Uint8Array.from([0x00, 0x38, 0x7e, 0x7f, 0x01, 0x08, 0xb8, 0xff]));
  assert.deepEqual(Array.from(e4.slice(0, 3)), [0, 1, 448]);
  assert.ok(Number.isNaN(e4[3]));
  assert.equal(e4[4], 2 ** -9); // smallest subnormal: 1/8 * 2^-6
  assert.equal(e4[5], 2 ** -6); // smallest normal
  assert.equal(e4[6], -1);
  assert.ok(Number.isNaN(e4[7]));
  const e5 = decodeFloats('F8_E5M2', Uint8Array.from([0x3c, 0x7b, 0x7c, 0x7d, 0x01, 0xfc]));
  assert.deepEqual(Array.from(e5.slice(0, 3)), [1, 57344, Infinity]);
  assert.ok(Number.isNaN(e5[3]));
  assert.equal(e5[4], 2 ** -16);
  assert.equal(e5[5], -Infinity);
});

test('F32 and F64 round trip exactly, unaligned input included', () => {
  const vals = [0, -0, 1.5, -3.25e-30, 3.4028234663852886e38, 1e-45];
  const f32 = encodeFloats('F32', vals);
  const shifted = new Uint8Array(f32.length + 1);
  shifted.set(f32, 1);
  assert.deepEqual(Array.from(decodeFloats('F32', shifted.subarray(1))), vals.map(Math.fround));
  const f64vals = [Math.PI, -1e-300, 2 ** 60 + 1];
  const f64 = encodeFloats('F64', f64vals);
  assert.deepEqual(Array.from(decodeFloats('F64', f64)), f64vals);
});

test('roundToDtype matches the encoders', () => {
  for (const x of [0.1, 1 / 3, 1e-6, 12345.678]) {
    assert.equal(roundToDtype('F32', x), Math.fround(x));
    assert.equal(roundToDtype('BF16', x), decodeFloats('BF16', encodeFloats('BF16', [x]))[0]);
    assert.equal(roundToDtype('F16', x), decodeFloats('F16', encodeFloats('F16', [x]))[0]);
  }
});

test('byte lengths of sub-byte dtypes must be whole bytes', () => {
  assert.equal(byteLengthOf('F4', 4), 2);
  assert.ok(Number.isNaN(byteLengthOf('F4', 3)));
  assert.equal(byteLengthOf('BF16', 3), 6);
});
