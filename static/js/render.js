// The one render scheduler: modules change the Store or their own state, then mark the parts of the page
// that show it; many changes in one tick (a sync page, a burst of events) become one DOM pass per part.

/**
 * init({order, after, defer}) → {define(name, fn), invalidate(...names)}
 * `order`: the parts' names, in the order they are drawn; `after` runs after every pass.
 */
export function init({ order, after = () => {}, defer = queueMicrotask }) {
  const renderers = new Map();
  const dirty = new Set();
  let queued = false;

  function flush() {
    queued = false;
    for (const name of order) {
      if (!dirty.delete(name)) continue;
      renderers.get(name)?.();
    }
    after();
  }

  return {
    /** `fn` draws part `name`. */
    define(name, fn) {
      if (!order.includes(name)) throw new Error(`unknown part of the page: ${name}`);
      renderers.set(name, fn);
    },
    /** Redraw these parts soon (once, however often this is called before the pass). */
    invalidate(...names) {
      for (const name of names) dirty.add(name);
      if (!queued) {
        queued = true;
        defer(flush);
      }
    },
  };
}
