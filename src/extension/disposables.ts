/** Everything a panel owns, disposed together and once (the pattern of VS Code's DisposableStore). */
export interface DisposableLike {
  dispose(): unknown;
}

export class DisposableStore implements DisposableLike {
  private readonly items: DisposableLike[] = [];
  private disposed = false;

  /** Adds `d` (disposed at once if the store already is) and returns it. */
  add<T extends DisposableLike>(d: T): T {
    if (this.disposed) void d.dispose();
    else this.items.push(d);
    return d;
  }

  /** A callback run on dispose. */
  onDispose(f: () => unknown): void {
    this.add({ dispose: f });
  }

  /** An AbortController aborted on dispose. */
  abortOnDispose(ctl: AbortController): AbortController {
    return this.add({ dispose: () => ctl.abort(), ctl }).ctl;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // Last added first: later resources may depend on earlier ones.
    for (const d of this.items.reverse()) {
      try {
        void d.dispose();
      } catch {
        // One failing resource must not keep the others alive.
      }
    }
    this.items.length = 0;
  }
}
