/** Text helpers of the CLI's output; sizes and counts are shared with the extension and the panel. */
export { formatBytes, formatCount } from '../shared/format';

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}
