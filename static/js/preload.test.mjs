// Run: node --test static/js/preload.test.mjs
// messages.html preloads every module the page imports (<link rel="modulepreload">), so the browser
// fetches them all at once instead of one import level at a time; this keeps that list in step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

const STATIC = new URL('../', import.meta.url);
const read = (urlPath) => readFileSync(new URL(`.${urlPath}`, STATIC), 'utf8');

/** URL paths of everything `entry` imports, directly or not (static imports only: the page has no other kind). */
function importGraph(entry) {
  const seen = new Set();
  const visit = (urlPath) => {
    const source = read(urlPath);
    for (const [, spec] of source.matchAll(/^\s*import\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
      const target = new URL(spec, `http://page${urlPath}`).pathname;
      if (seen.has(target)) continue;
      seen.add(target);
      visit(target);
    }
  };
  visit(entry);
  return seen;
}

test('messages.html preloads exactly the modules app.js imports', () => {
  const html = read('/messages.html');
  assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
  const preloaded = Array.from(html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g), (m) => m[1]);
  assert.equal(new Set(preloaded).size, preloaded.length, 'each once');
  const imported = importGraph('/app.js');
  assert.ok(imported.has('/js/store.js') && imported.has('/js/bubble.js'), 'indirect imports are found');
  assert.deepEqual([...preloaded].sort(), [...imported].sort());
  for (const p of preloaded) assert.ok(existsSync(new URL(`.${p}`, STATIC)), `${p} exists`);
});
