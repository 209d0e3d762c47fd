/**
 * The two sides of the diff view: statistics of the original weights (left) and the same statistics
 * of the dequantized weights plus the error columns (right), one aligned line per tensor, so the
 * editor's diff highlights exactly what quantization changed. Pure text, unit-tested.
 */
import type { QuantizeReport, TensorReport } from '../node/quantize';

const fmtE = (x: number) => (x === 0 ? '0' : x.toExponential(4));

function momentCells(m: TensorReport['original']): string[] {
  return [fmtE(m.mean), fmtE(m.std), fmtE(m.rms), fmtE(m.absmax)];
}

function errorCells(t: TensorReport): string[] {
  return [
    fmtE(t.mse),
    t.sqnrDb === null ? 'inf' : t.sqnrDb.toFixed(2),
    t.residualEntropy.toFixed(4),
    `${(t.clippedFraction * 100).toFixed(3)}%`,
    `${t.scaleRatio.mean.toFixed(3)} [${t.scaleRatio.min.toFixed(3)}..${t.scaleRatio.max.toFixed(3)}]`,
  ];
}

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

export interface StatsDocuments {
  original: string;
  quantized: string;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(2)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${bytes} B`;
}

export function renderStatsDocuments(report: QuantizeReport, inputName: string, outputName: string): StatsDocuments {
  const s = report.settings as Record<string, unknown>;
  const dtypes = [...new Set(report.tensors.map((t) => t.dtype))].join('/');
  const method =
    s.method === 'rtn'
      ? `rtn ${s.bits}-bit, group ${s.groupSize || 'per-channel'}`
      : `dareq ${s.bits}-bit, group ${s.groupSize || 'per-channel'}, preset ${s.preset}, λw ${s.lambdaWeight}, λH ${s.lambdaEntropy}, normalize ${s.normalize ? 'on' : 'off'}, B ${s.bins}, K ${s.grid}`;
  const leftHead = `# original   ${inputName}  ${formatSize(report.summary.inputBytes)}  ${dtypes}  (${report.tensors.length} tensors quantized, ${report.summary.tensorsCopied} copied)`;
  const rightHead = `# quantized  ${outputName}  ${formatSize(report.summary.outputBytes)}  ${method}, ${s.format}`;
  const base = ['tensor', 'shape', 'dtype', 'mean', 'std', 'rms', 'absmax'];
  const header = [...base, 'mse', 'sqnr_db', 'entropy', 'clipped', 'scale/absmax [min..max]'];
  const rows = report.tensors.map((t) => {
    const common = [t.name, t.shape.join('x'), t.dtype];
    return { left: [...common, ...momentCells(t.original)], right: [...common, ...momentCells(t.dequantized), ...errorCells(t)] };
  });
  // Align both sides on the same column widths, so unchanged cells line up in the diff.
  const all = table([header, ...rows.map((r) => r.right)]);
  const widths = header.map((_, i) => Math.max(header[i].length, ...rows.map((r) => r.right[i].length)));
  const pad = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  const original = [leftHead, pad(base), ...rows.map((r) => pad(r.left))].join('\n') + '\n';
  const quantized = [rightHead, all[0], ...all.slice(1)].join('\n') + '\n';
  return { original, quantized };
}
