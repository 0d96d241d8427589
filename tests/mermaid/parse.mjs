// Parses Mermaid text from stdin with Mermaid's own parser, headless: jsdom
// stands in for the browser objects the library expects at load time.
// Prints the diagram type; exits 1 with the parser's message on an error.
// The packages come from target/mermaid (scripts/test.sh installs them).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.env.MERMAID_ROOT ?? join(import.meta.dirname, '../../target/mermaid');
const require = createRequire(join(root, 'package.json'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!DOCTYPE html><body></body>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import(require.resolve('mermaid'));
mermaid.initialize({ startOnLoad: false });
try {
  const parsed = await mermaid.parse(readFileSync(0, 'utf8'));
  console.log(parsed.diagramType);
} catch (e) {
  console.error(`mermaid: ${e.message ?? e}`);
  process.exit(1);
}
