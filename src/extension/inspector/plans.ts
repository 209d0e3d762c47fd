/**
 * The EWQ plans of one open model: FastEWQ's from the header at once, then the full analysis (in the
 * background for models up to weightlens.ewq.autoAnalyzeMaxGB, or when asked), which replaces it
 * with the blocks where the two disagree marked. Plans are recomputed when the settings change.
 */
import * as l10n from '@vscode/l10n';
import { CancelledError, oneLine } from '../../core/errors';
import type { FastEwqModel } from '../../core/ewq/fast';
import { blockSummary, type Plan } from '../../core/ewq/plan';
import { planModel, type PlanOptions } from '../../node/ewq';
import type { OpenModel } from '../../node/open-model';
import type { NotifyWebview, PlanView } from '../../shared/protocol';
import type { EwqConfig, RunConfig } from '../config';

export function planView(plan: Plan, fast?: Plan): PlanView {
  const disagreements =
    fast && plan.source === 'ewq'
      ? plan.blocks.filter((b, i) => (fast.blocks[i]?.precision === 'raw') !== (b.precision === 'raw')).map((b) => b.index)
      : [];
  return {
    source: plan.source,
    variant: plan.variant,
    mu: plan.mu,
    sigma: plan.sigma,
    threshold: plan.threshold,
    blocks: plan.blocks.map(blockSummary),
    rawBytes: plan.rawBytes,
    totalBytes: plan.totalBytes,
    fits: plan.fits,
    budget: plan.budget,
    format: plan.format,
    disagreements,
  };
}

export class DocumentPlans {
  fast: Plan | undefined;
  full: Plan | undefined;
  private running: AbortController | undefined;

  constructor(
    private readonly opened: OpenModel,
    private readonly fastModel: FastEwqModel | undefined,
    private readonly notify: NotifyWebview,
  ) {}

  /** The plan to quantize with: the full analysis when there is one. */
  get current(): Plan | undefined {
    return this.full ?? this.fast;
  }

  private options(ewq: EwqConfig, run: RunConfig, budget: number | undefined): PlanOptions {
    // Sizes are those of compressed-tensors, the format that saves memory (fake-quant saves none).
    return {
      variant: ewq.variant,
      thresholdFactor: ewq.thresholdFactor,
      entropyEpsilon: ewq.entropyEpsilon,
      format: 'compressed-tensors',
      groupSize: run.settings.groupSize,
      budget,
    };
  }

  async refresh(ewq: EwqConfig, run: RunConfig): Promise<void> {
    this.full = undefined;
    const budget = ewq.budgetGB === undefined ? undefined : ewq.budgetGB * 1e9;
    if (this.fastModel) {
      this.fast = await planModel(this.opened, { ...this.options(ewq, run, budget), fast: this.fastModel });
      this.notify('plan', { plan: planView(this.fast) });
    }
    const bytes = this.opened.model.tensors.reduce((a, t) => a + t.byteLength, 0);
    if (ewq.autoAnalyzeMaxGB > 0 && bytes <= ewq.autoAnalyzeMaxGB * 1e9) void this.analyze(ewq, run, budget).catch(() => undefined);
    else
      this.notify('planStatus', {
        text: l10n.t('FastEWQ plan (from the header). Run "Plan Mixed Precision (EWQ)…" for the full entropy analysis.'),
        running: false,
      });
  }

  /** The full analysis; a newer request cancels an older one. */
  async analyze(
    ewq: EwqConfig,
    run: RunConfig,
    budget: number | undefined,
    onProgress?: (f: number) => void,
    signal?: AbortSignal,
  ): Promise<Plan | undefined> {
    this.running?.abort();
    const ctl = new AbortController();
    this.running = ctl;
    signal?.addEventListener('abort', () => ctl.abort());
    let last = 0;
    this.notify('planStatus', { text: l10n.t('EWQ: analysing block entropies…'), running: true });
    try {
      const plan = await planModel(this.opened, {
        ...this.options(ewq, run, budget),
        signal: ctl.signal,
        onProgress: (f) => {
          onProgress?.(f);
          if (Date.now() - last > 200) {
            last = Date.now();
            this.notify('planStatus', { text: l10n.t('EWQ: analysing block entropies… {0}%', Math.floor(f * 100)), running: true });
          }
        },
      });
      this.full = plan;
      this.notify('plan', { plan: planView(plan, this.fast) });
      this.notify('planStatus', { text: '', running: false });
      return plan;
    } catch (e) {
      const cancelled = e instanceof CancelledError;
      if (this.running === ctl)
        this.notify('planStatus', {
          text: cancelled ? l10n.t('EWQ analysis cancelled.') : l10n.t('EWQ analysis failed: {0}', oneLine(e)),
          running: false,
        });
      if (cancelled) return undefined;
      throw e;
    } finally {
      if (this.running === ctl) this.running = undefined;
    }
  }

  dispose(): void {
    this.running?.abort();
  }
}
