/**
 * Parses PowerShell scripts with the tree-sitter PowerShell grammar (npm
 * tree-sitter-powershell, run by web-tree-sitter) and prints one JSON line per file:
 * `{file, ok, errors: [{row, column, text}]}`. Exit code 1 when any file has a syntax
 * error. Microsoft's own parser needs PowerShell itself, which these machines cannot
 * install; this grammar catches unbalanced blocks, bad strings and broken expressions.
 *
 *   deno run -A --config agent/package/deno.json agent/package/check_powershell.ts FILE…
 *
 * @module
 */
import { Language, type Node, Parser } from "web-tree-sitter";
import pkg from "tree-sitter-powershell/package.json" with { type: "json" };

const info = JSON.parse(
  new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
      .output())
      .stdout,
  ),
);
await Parser.init();
const language = await Language.load(
  await Deno.readFile(
    `${info.npmCache}/registry.npmjs.org/tree-sitter-powershell/${pkg.version}/tree-sitter-powershell.wasm`,
  ),
);
const parser = new Parser();
parser.setLanguage(language);

function errors(node: Node, out: { row: number; column: number; text: string }[]) {
  if (node.isError || node.isMissing) {
    out.push({
      row: node.startPosition.row + 1,
      column: node.startPosition.column + 1,
      text: node.text.slice(0, 80),
    });
  }
  for (const child of node.children) if (child && child.hasError) errors(child, out);
  if (node.isMissing || node.isError) return;
}

let failed = false;
for (const file of Deno.args) {
  const tree = parser.parse(await Deno.readTextFile(file));
  const found: { row: number; column: number; text: string }[] = [];
  if (tree?.rootNode.hasError) errors(tree.rootNode, found);
  if (!tree || tree.rootNode.hasError) failed = true;
  console.log(JSON.stringify({ file, ok: !!tree && !tree.rootNode.hasError, errors: found }));
}
Deno.exit(failed ? 1 : 0);
