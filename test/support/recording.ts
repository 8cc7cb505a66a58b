/** Test doubles that record what an operator did to them, for assertions on exact calls and frames. */
import type { SchedulerLike } from 'rxjs';
import type { Ack } from '../../lib/core/ack.ts';

/** An upstream ack that logs every call (not idempotent, so a duplicate call shows up). */
export function recordingAck(id: string, log: string[], now?: () => number): Ack {
  const at = () => (now ? `${now()} ` : '');
  return {
    enqueued: () => void log.push(`${at()}${id} enqueued`),
    flushed: () => void log.push(`${at()}${id} flushed`),
    failed: (error) => void log.push(`${at()}${id} failed ${String(error)}`),
  };
}

export interface ScheduledAction {
  scheduledAt: number;
  delay: number;
  ranAt?: number;
}

/** Wraps a scheduler and records, per scheduled action, when it was scheduled and whether it ran. */
export function recordingScheduler(inner: SchedulerLike): { scheduler: SchedulerLike; actions: ScheduledAction[] } {
  const actions: ScheduledAction[] = [];
  const scheduler: SchedulerLike = {
    now: () => inner.now(),
    schedule(work: any, delay?: number, state?: any) {
      const record: ScheduledAction = { scheduledAt: inner.now(), delay: delay ?? 0 };
      actions.push(record);
      return inner.schedule(
        function (this: any, s: any) {
          record.ranAt = inner.now();
          work.call(this, s);
        },
        delay,
        state,
      );
    },
  };
  return { scheduler, actions };
}
