/** The panel's channel view shows the residual of what a quantize run writes, for every preset. */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { decodeFloats } from '../../src/core/dtypes';
import { MemoryByteSource } from '../../src/core/bytesource';
import { loadSingleFile } from '../../src/core/model';
import { resolveSettings, type Preset, type SettingsInput } from '../../src/core/quant/settings';
import { matrixView } from '../../src/core/select';
import { computeChannel } from '../../src/extension/inspector/detail';
import { openModel } from '../../src/node/open-model';
import { quantize } from '../../src/node/quantize';
import { buildSafetensors, normals, tempDir } from '../helpers/safetensors';

const CASES: [string, SettingsInput][] = [
  ...(['clip', 'paper', 'reference'] as Preset[]).map((preset): [string, SettingsInput] => [preset, { preset }]),
  ['zero point, DARE-Q', { symmetric: false }],
  ['zero point, HQQ', { method: 'hqq', symmetric: false }],
];
for (const [name, input_] of CASES) {
  test(`channel view (${name}, BF16): its residual histogram is the written output's`, async () => {
    const dir = await tempDir();
    const input = path.join(dir, 'model.safetensors');
    const rows = 6;
    const cols = 96;
    await fsp.writeFile(
      input,
      buildSafetensors([
        { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [rows, cols], values: normals(rows * cols, 7, 0.02) },
      ]),
    );
    const settings = resolveSettings({ ...input_, groupSize: 32 });
    const out = path.join(dir, 'out.safetensors');
    await quantize({ input, settings, format: 'fake', out, version: 'test' });
    const read = async (p: string) => {
      const bytes = new Uint8Array(await fsp.readFile(p));
      const m = await loadSingleFile(p, path.basename(p), new MemoryByteSource(p, bytes));
      const t = m.tensors[0];
      return decodeFloats('BF16', bytes.subarray(t.offset, t.offset + t.byteLength));
    };
    const [orig, written] = [await read(input), await read(out)];
    const opened = await openModel(input);
    try {
      const t = opened.model.tensors[0];
      for (const [row, group] of [
        [0, 0],
        [3, 2],
        [5, 1],
      ]) {
        const ch = await computeChannel(opened, t, matrixView(t)!, settings, row, group);
        const off = row * cols + group * 32;
        const resid = Array.from({ length: 32 }, (_, i) => orig[off + i] - written[off + i]);
        const lo = Math.min(...resid);
        const hi = Math.max(...resid);
        const counts = new Array<number>(settings.bins).fill(0);
        for (const e of resid) counts[Math.min(settings.bins - 1, Math.floor(((e - lo) / (hi - lo)) * settings.bins))]++;
        assert.deepEqual(
          { lo: ch.residual.lo, hi: ch.residual.hi, counts: ch.residual.counts },
          { lo, hi, counts },
          `row ${row} group ${group}`,
        );
        if (!settings.symmetric) {
          // The 2-D choice: an integer zero point in the code range, the offset it puts under code qmin.
          const z = ch.zero!;
          assert.equal(z.kind, 'integer');
          assert.ok(Number.isInteger(z.point) && z.point >= -8 && z.point <= 7, `zero point ${z.point}`);
          assert.ok(Math.abs(z.offset - (-8 - z.point) * ch.scales[ch.chosen]) <= 1e-12 * Math.abs(z.offset));
          assert.ok(ch.loss.every(Number.isFinite) && ch.loss.length === settings.grid, 'L(s) along the scale axis');
        } else assert.equal(ch.zero, undefined);
      }
    } finally {
      await opened.close();
    }
  });
}
