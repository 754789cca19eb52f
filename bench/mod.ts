/**
 * Runs every benchmark in bench/ (files ending in _bench.ts), one process each, one
 * after another so they do not compete for the two cores. `deno task bench [name…]`
 * runs only the named ones (e.g. `deno task bench kernel`).
 */
const here = new URL(".", import.meta.url).pathname;
if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(
    "Usage: deno task bench [name…]\n\n" +
      "Runs every bench/*_bench.ts (or those whose file names start with a given name), one\n" +
      "process at a time; each prints its figures next to a baseline measured in the same run.",
  );
  Deno.exit(0);
}
const only = Deno.args;
const files = [...Deno.readDirSync(here)]
  .filter((e) => e.isFile && e.name.endsWith("_bench.ts"))
  .map((e) => e.name)
  .filter((n) => !only.length || only.some((o) => n.startsWith(o)))
  .sort();
let failed = 0;
for (const file of files) {
  console.log(`\n== ${file}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}${file}`],
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (code !== 0) {
    failed++;
    console.log(`${file} exited with code ${code}`);
  }
}
Deno.exit(failed ? 1 : 0);
