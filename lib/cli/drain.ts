/**
 * Runs a command's flow (an observable) to its end from async code: each value to a callback, the
 * promise settling when the flow completes, errors, or `stop` resolves (a signal).
 *
 * Invariant guarded here: on `stop` the flow is unsubscribed (its teardown runs) before the promise
 * resolves; a stop after the end changes nothing.
 */
import type { Observable } from 'rxjs';

/**
 * @example await drain(events$, (event) => progress.report(event), stopOnSignals().promise);
 */
export function drain<T>(source: Observable<T>, onValue: (value: T) => void, stop?: Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    const subscription = source.subscribe({ next: onValue, error: reject, complete: resolve });
    void stop?.then(() => {
      subscription.unsubscribe();
      resolve();
    });
  });
}
