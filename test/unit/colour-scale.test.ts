/** The overview grid's colour scale (webview/inspector/colour-scale.ts): no colour for noise. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { colour, colourDomain, ONE_DB } from '../../webview/inspector/colour-scale';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≈ ${b}`);

test('a range wider than the minimum span is the values’ own range', () => {
  assert.deepEqual(colourDomain([19.78, 23.03, 21.5], ONE_DB.db), { lo: 19.78, hi: 23.03, min: 19.78, max: 23.03, widened: false });
  assert.deepEqual(colourDomain([1e-4, 3e-4], ONE_DB.power), { lo: 1e-4, hi: 3e-4, min: 1e-4, max: 3e-4, widened: false });
  assert.deepEqual(colourDomain([0.2, 0.7], undefined), { lo: 0.2, hi: 0.7, min: 0.2, max: 0.7, widened: false });
  assert.deepEqual(colourDomain([], ONE_DB.db), { lo: 0, hi: 1, min: 0, max: 1, widened: false });
});

test('SQNRs within a fraction of a dB get a 1 dB scale about their middle: the cells keep middling colours', () => {
  // The end-to-end suite's generated model: 28 estimates between 18.24 and 18.43 dB (±0.1 dB each).
  const d = colourDomain([18.24, 18.43, 18.3], ONE_DB.db);
  assert.equal(d.widened, true);
  assert.deepEqual([d.min, d.max], [18.24, 18.43], 'the values’ own range, for the legend');
  close(d.hi - d.lo, 1);
  close((d.lo + d.hi) / 2, (18.24 + 18.43) / 2);
  // Before, the worst cell was pure red and the best pure green; now both lie near the middle hue.
  const hue = (c: string) => Number(/hsl\((\d+),/.exec(c)![1]);
  assert.ok(hue(colour(18.24, d.lo, d.hi, true)) >= 45 && hue(colour(18.43, d.lo, d.hi, true)) <= 75);
  assert.equal(hue(colour(18.24, 18.24, 18.43, true)), 0);
});

test('ratio metrics widen about the geometric middle; a zero keeps the plain range', () => {
  const d = colourDomain([1.0e-5, 1.1e-5], ONE_DB.power);
  assert.equal(d.widened, true);
  close(d.hi / d.lo, 10 ** 0.1);
  close(d.lo * d.hi, 1.0e-5 * 1.1e-5);
  assert.deepEqual(colourDomain([0, 1e-9], ONE_DB.amplitude), { lo: 0, hi: 1e-9, min: 0, max: 1e-9, widened: false });
  // One value: a scale of the minimum span about it, so it is coloured as middling, not as the best.
  const one = colourDomain([20], ONE_DB.db);
  assert.deepEqual(one, { lo: 19.5, hi: 20.5, min: 20, max: 20, widened: true });
});

test('colours are clamped to the scale, and a scale of one value is its middle', () => {
  assert.equal(colour(5, 0, 1, true), colour(1, 0, 1, true));
  assert.equal(colour(-5, 0, 1, false), colour(0, 0, 1, false));
  assert.equal(colour(3, 3, 3, true), 'hsl(60, 55%, 42%)');
});
