/**
 * chart.js for the panel: the controllers and elements the charts use, registered once (the rest
 * is tree-shaken), and the theme colours they are drawn in.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend);

export { Chart };
export type { ChartDatasetCustomTypesPerDataset } from 'chart.js';

/** A theme colour (a VS Code CSS variable), or `fallback` where the page has none. */
export const css = (name: string, fallback: string) => getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
