/**
 * Subscribes an observer to an input and hands its subscription to the owner BEFORE the input emits
 * anything: what RxJS's own operators get from their internal subscriber chaining. Without it, a
 * synchronous source (or inner) keeps emitting after the owner failed or was unsubscribed, and an
 * infinite one never stops.
 */
import { from, Observable, type ObservableInput, type Observer, type Subscription } from 'rxjs';

/**
 * @example
 * subscribeLinked(source, observer, (link) => subscriber.add(link)); // unsubscribing `subscriber` stops `source` at once
 */
export function subscribeLinked<T>(
  input: ObservableInput<T>,
  observer: Partial<Observer<T>>,
  adopt: (link: Subscription) => void,
): void {
  new Observable<T>((link) => {
    adopt(link);
    // from() throws on what is not an ObservableInput; that reaches observer.error.
    from(input).subscribe(link);
  }).subscribe(observer);
}
