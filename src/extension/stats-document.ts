/**
 * The two sides of the diff view: statistics of the original weights (left) and the same statistics
 * of the dequantized weights plus the error columns (right), one aligned line per tensor, so the
 * editor's diff highlights exactly what quantization changed. Pure text, unit-tested.
 */
import type { QuantizeReport } from '../node/quantize';
import { dtypeBits, isDType } from '../core/dtypes';
import { groupLength } from '../core/quant/matrix';
import { formatBytes } from '../shared/format';
import { shortName, type Comparison } from '../node/compare';

const fmtE = (x: number) => (x === 0 ? '0' : x.toExponential(4));

export interface StatsDocuments {
  original: string;
  quantized: string;
}

/** One tensor of a diff: the cells each side shows, and the error cells (right side only). */
interface PairRow {
  /** The short name (`L3 · q_proj`), first on the line. */
  name: string;
  /** Shape and dtype, last. */
  tail: string;
  left: string[];
  right: string[];
  errors: string[];
}

/**
 * Both sides of a diff on the same lines and columns: the head lines (summary first), then per
 * tensor its short name, the error cells (the right side's; "·" on the left), each side's own cells
 * and the shape last — so what matters is where the eye starts, even in a half-width diff pane, and
 * a line stays within an editor's width. Equal column positions make the diff mark changed cells, not shifted lines.
 */
function renderPair(o: {
  leftHead: string[];
  rightHead: string[];
  errorHeader: string[];
  sideHeader: string[];
  rows: PairRow[];
}): StatsDocuments {
  const width = (cells: (r: PairRow) => string[], header: string[]) =>
    header.map((h, i) => Math.max(h.length, ...o.rows.map((r) => cells(r)[i].length)));
  const ew = width((r) => r.errors, o.errorHeader);
  const sw = width((r) => [...r.left.keys()].map((i) => (r.left[i].length > r.right[i].length ? r.left[i] : r.right[i])), o.sideHeader);
  const nw = Math.max('tensor'.length, ...o.rows.map((r) => r.name.length));
  const line = (name: string, errors: string[], side: string[], tail: string) =>
    [name.padEnd(nw), ...errors.map((c, i) => c.padStart(ew[i])), ...side.map((c, i) => c.padStart(sw[i])), tail].join('  ').trimEnd();
  const dots = o.errorHeader.map(() => '·');
  const head = Math.max(o.leftHead.length, o.rightHead.length);
  const fill = (h: string[]) => [...h, ...Array(head - h.length).fill('#')];
  const original = [
    ...fill(o.leftHead),
    line('tensor', dots, o.sideHeader, 'shape'),
    ...o.rows.map((r) => line(r.name, dots, r.left, r.tail)),
  ];
  const quantized = [
    ...fill(o.rightHead),
    line('tensor', o.errorHeader, o.sideHeader, 'shape'),
    ...o.rows.map((r) => line(r.name, r.errors, r.right, r.tail)),
  ];
  return { original: original.join('\n') + '\n', quantized: quantized.join('\n') + '\n' };
}

export function renderStatsDocuments(report: QuantizeReport, inputName: string, outputName: string): StatsDocuments {
  const s = report.settings as Record<string, unknown>;
  const dtypes = [...new Set(report.tensors.map((t) => t.dtype))].join('/');
  // The grid: symmetric (sign-aware or not) or with a zero point, refinement and weighting when set.
  const grid = [
    s.symmetric === false ? 'zero point' : s.signAware ? 'sign-aware' : 'symmetric',
    ...(typeof s.refine === 'number' && s.refine > 0 ? [`refine ${s.refine}`] : []),
    ...(s.weighting === 'magnitude' ? ['magnitude-weighted'] : []),
  ].join(', ');
  const method =
    s.method !== 'dareq'
      ? `${s.method} ${s.bits}-bit, group ${s.groupSize || 'per-channel'}, ${grid}`
      : `dareq ${s.bits}-bit, group ${s.groupSize || 'per-channel'}, ${grid}, preset ${s.preset}, λw ${s.lambdaWeight}, λH ${s.lambdaEntropy}, normalize ${s.normalize ? 'on' : 'off'}, B ${s.bins}, K ${s.grid}`;
  const weights = report.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const sumW2 = report.tensors.reduce((a, t) => a + t.original.rms ** 2 * t.shape.reduce((x, y) => x * y, 1), 0);
  const sumE2 = report.tensors.reduce((a, t) => a + t.mse * t.shape.reduce((x, y) => x * y, 1), 0);
  const params = report.summary.inputBytes > 0 ? report.summary.outputBytes / report.summary.inputBytes : 1;
  const worst = [...report.tensors]
    .filter((t) => t.sqnrDb !== null)
    .sort((a, b) => a.sqnrDb! - b.sqnrDb!)
    .slice(0, 5);
  const rows: PairRow[] = report.tensors.map((t) => ({
    name: shortName(t.name),
    tail: `${t.shape.join('x')} ${t.dtype}`,
    left: [fmtE(t.original.mean), fmtE(t.original.absmax), isDType(t.dtype) ? String(dtypeBits(t.dtype)) : '?'],
    right: [fmtE(t.dequantized.mean), fmtE(t.dequantized.absmax), tensorStoredBits(t, report).toFixed(2)],
    errors: [
      t.sqnrDb === null ? 'inf' : t.sqnrDb.toFixed(2),
      fmtE(t.mse),
      t.residualEntropy.toFixed(3),
      `${(t.clippedFraction * 100).toFixed(2)}%`,
      t.scaleRatio.mean.toFixed(3),
    ],
  }));
  return renderPair({
    leftHead: [
      `# original   ${inputName}  ${formatBytes(report.summary.inputBytes)}  ${dtypes}`,
      `# ${report.tensors.length} tensors quantized (${weights.toLocaleString('en-US')} weights), ${report.summary.tensorsCopied} copied`,
    ],
    rightHead: [
      `# quantized  ${outputName}  ${formatBytes(report.summary.outputBytes)} (${(params * 100).toFixed(1)}% of the input), ${storedBits(report).toFixed(2)} bits/weight stored`,
      `# ${method}, ${s.format}`,
      `# SQNR ${sumE2 === 0 ? 'inf' : `${(10 * Math.log10(sumW2 / sumE2)).toFixed(2)} dB`} over all, MSE ${fmtE(sumE2 / Math.max(1, weights))}`,
      `# worst: ${worst.map((t) => `${shortName(t.name)} ${t.sqnrDb!.toFixed(1)} dB`).join(', ') || 'none'}`,
    ],
    errorHeader: ['sqnr_db', 'mse', 'entropy', 'clipped', 'scale'],
    sideHeader: ['mean', 'absmax', 'bits'],
    rows,
  });
}

/**
 * Bits per weight of one tensor in a runtime's storage: the code bits plus each group's scale (in
 * the scale's dtype: f16 for GGUF blocks, else the weights' dtype) and zero point (b bits packed for
 * compressed-tensors, Q4_1's f16 offset), spread over the group.
 */
export function tensorStoredBits(t: QuantizeReport['tensors'][number], report: QuantizeReport): number {
  const settings = report.settings as { format?: string; symmetric?: boolean };
  const gguf = settings.format === 'gguf';
  const n = t.shape.reduce((a, b) => a * b, 1);
  const cols = t.shape.length >= 2 ? n / t.shape[0] : n;
  const group = groupLength(t.groupSize, cols);
  const scaleBits = gguf || !isDType(t.dtype) ? 16 : dtypeBits(t.dtype);
  // GGUF's 8-bit output matrix stays symmetric (Q8_0) in an asymmetric run.
  const zeroBits = settings.symmetric === false && !(gguf && t.bits === 8) ? (gguf ? 16 : t.bits) : 0;
  return t.bits + (scaleBits + zeroBits) / group;
}

/** Bits per quantized weight over all quantized tensors (tensorStoredBits, weighted by size). */
export function storedBits(report: QuantizeReport): number {
  let bits = 0;
  let weights = 0;
  for (const t of report.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    bits += n * tensorStoredBits(t, report);
    weights += n;
  }
  return weights ? bits / weights : 0;
}

/** The diff view of any two checkpoints (Compare Weights): A on the left, B and the errors on the right. */
export function renderCompareDocuments(c: Comparison): StatsDocuments {
  const rows: PairRow[] = c.tensors.map((t) => ({
    name: t.short,
    tail: t.shape.join('x'),
    left: [t.typeA, t.bitsA.toFixed(2)],
    right: [t.typeB, t.bitsB.toFixed(2)],
    errors: [t.sqnrDb === null ? 'inf' : t.sqnrDb.toFixed(2), fmtE(t.mse), fmtE(t.maxAbs), fmtE(t.relative), t.cosine.toFixed(6)],
  }));
  const s = c.summary;
  const byName = new Map(c.tensors.map((t) => [t.name, t]));
  const unmatched = [
    c.onlyInA.length ? `only in A: ${c.onlyInA.length}` : '',
    c.onlyInB.length ? `only in B: ${c.onlyInB.length}` : '',
    c.shapeMismatch.length ? `other shapes: ${c.shapeMismatch.length}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return renderPair({
    leftHead: [
      `# A  ${c.a}`,
      `# ${c.formatA}, ${s.bitsA.toFixed(2)} bits/weight`,
      `# ${s.tensors} tensors matched (${s.weights.toLocaleString('en-US')} weights)${unmatched ? `; ${unmatched}` : ''}`,
    ],
    rightHead: [
      `# B  ${c.b}`,
      `# ${c.formatB}, ${s.bitsB.toFixed(2)} bits/weight${c.qkReordered ? `; q/k rows of ${c.qkReordered.toUpperCase()} in HF order` : ''}`,
      `# SQNR ${s.sqnrDb === null ? 'inf' : `${s.sqnrDb.toFixed(2)} dB`} over all, MSE ${fmtE(s.mse)}`,
      `# worst: ${s.worst.map((n) => `${byName.get(n)!.short} ${byName.get(n)!.sqnrDb!.toFixed(1)} dB`).join(', ') || 'none (identical)'}`,
    ],
    errorHeader: ['sqnr_db', 'mse', 'max|A-B|', 'rel_err', 'cosine'],
    sideHeader: ['type', 'bits'],
    rows,
  });
}
