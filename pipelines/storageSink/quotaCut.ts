/**
 * How the sink's memory quota drains by writes, never by waiting for the flush interval: the
 * writer's open batch is cut (reason `quota`) when rows in flight cross the cut mark, so one batch
 * is written while the next fills; when wakes start being held; and after each write while they
 * still are (otherwise held rows could sit in the open batch until the interval).
 */
import { Subject, type Observable } from 'rxjs';
import type { WatermarkStats } from '../../operators/watermarkBackpressure.ts';

export class QuotaCut {
  private readonly cuts = new Subject<void>();
  private readonly cutBytes: number;
  private aboveCut = false;
  private holding = false;

  /** `cutBytes`: bytes in flight (as the watermark counts them) at which the open batch is cut. */
  constructor(cutBytes: number) {
    this.cutBytes = cutBytes;
  }

  /** For batchBy's `cut$`. */
  get cut$(): Observable<void> {
    return this.cuts;
  }

  /** The watermark's stats after each change. */
  watch(stats: Readonly<WatermarkStats>): void {
    const startsHolding = stats.holding && !this.holding;
    this.holding = stats.holding;
    if (stats.usageBytes < this.cutBytes) this.aboveCut = false;
    else if (!this.aboveCut || startsHolding) {
      this.aboveCut = true;
      this.cuts.next();
    }
  }

  /** A batch was written: while wakes are held, whatever the open batch holds goes next. */
  written(): void {
    if (this.holding) this.cuts.next();
  }
}
