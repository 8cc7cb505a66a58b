/**
 * An input read until a stop is requested: the command's source then ends (completes) instead of
 * being torn down, so the flow downstream makes what it accepted durable as at the end of the input.
 *
 * Invariant guarded here: every item handed out before the stop is kept (it was accepted); after the
 * stop no item is handed out, and a read still waiting (stdin kept open) does not hold the stop up.
 */

/**
 * `source`, ending at the first of its own end and `stop`. On the stop, `onStop` runs once (close
 * the stream under the source there, so an open stdin no longer keeps the process alive), and the
 * read in flight is abandoned: its line was not accepted.
 *
 * @example fromPaced(untilStopped(readEvents(input.stream), signals.promise, () => input.stream.pause()))
 */
export function untilStopped<T>(source: AsyncIterable<T>, stop: Promise<unknown>, onStop?: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const iterator = source[Symbol.asyncIterator]();
      let stopped = false;
      const ended: Promise<IteratorResult<T>> = stop.then(() => {
        stopped = true;
        onStop?.();
        return { done: true, value: undefined };
      });
      const close = () => {
        // A generator waiting on a read closes only once the read returns: never wait for it.
        void Promise.resolve(iterator.return?.()).catch(() => undefined);
      };
      return {
        next: async () => {
          if (stopped) return { done: true, value: undefined };
          const result = await Promise.race([iterator.next(), ended]);
          // A value that won the race was read before the stop took effect: it is handed out (accepted).
          if (stopped && result.done === true) close();
          return result;
        },
        return: async () => {
          close();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
