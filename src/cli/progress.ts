/**
 * Progress on stderr for the long commands (quantize, plan, compare, eval): the percentage, how
 * much of what, the time so far and an ETA — a rewritten line on a terminal, a line every few
 * seconds otherwise, nothing for runs under a second or with --quiet.
 */
import { formatBytes, formatCount } from './format';
import type { Io } from './main';

export interface ProgressPoint {
  /** 0..1 */
  fraction: number;
  done: number;
  total: number;
  /** The tensor or model being worked on. */
  what: string;
}

/** What `done` and `total` count; `share` shows the percentage alone. */
export type ProgressUnit = 'bytes' | 'weights' | 'tokens' | 'share';

export function formatDuration(s: number): string {
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function amount(done: number, total: number, unit: ProgressUnit): string {
  if (unit === 'share') return '';
  if (unit === 'bytes') return `${formatBytes(done)} / ${formatBytes(total)}`;
  return `${formatCount(done)} / ${formatCount(total)} ${unit}`;
}

export function makeProgress(
  io: Io,
  quiet: boolean,
  now: () => number = Date.now,
): { update: (p: ProgressPoint, unit?: ProgressUnit) => void; done: () => void } {
  const start = now();
  let last = 0;
  let shown = false;
  return {
    update(p, unit = 'bytes') {
      if (quiet) return;
      const t = now();
      const interval = io.errIsTty ? 100 : 2000;
      if (t - start < 1000 || t - last < interval) return;
      last = t;
      shown = true;
      const elapsed = (t - start) / 1000;
      const eta = p.fraction > 0 ? elapsed * (1 / p.fraction - 1) : NaN;
      const line = `[${(p.fraction * 100).toFixed(1).padStart(5)}%] ${[amount(p.done, p.total, unit), `${formatDuration(elapsed)}`].filter(Boolean).join('  ')} elapsed, ETA ${Number.isFinite(eta) ? formatDuration(eta) : '?'}  ${p.what}`;
      io.err(io.errIsTty ? `\r\x1b[K${line}` : `${line}\n`);
    },
    done() {
      if (shown && io.errIsTty) io.err('\r\x1b[K');
    },
  };
}
