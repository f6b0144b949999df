/**
 * Where the CLI's start-up goes, module by module (docs/performance.md):
 * copies the project into a temporary folder with one line added at the top
 * of every module (a timestamp as it starts evaluating) and one at the end
 * of `main.ts`, runs the copy `RUNS` times with the arguments given, and
 * prints medians:
 *
 * - when the first module starts evaluating (Deno's own start-up, then
 *   reading and compiling every module of the static graph);
 * - how long each module's top level takes, and what is lazily imported;
 * - the time from the last module's evaluation to the end of `main()` (for
 *   the run form: parsing, planning, the clone, setup and the wait);
 * - the wall time of the whole process, and of an empty `deno run`.
 *
 * `deno run -A bench/startup.ts -pmI -u x /bin/true` (as root), or
 * `deno run -A bench/startup.ts --version`.
 * @module
 */

import { PERMISSION_FLAGS } from "../lib/deno_run.ts";

const RUNS = 21;
const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const flags = PERMISSION_FLAGS;
const MARKS = "__startupMarks";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The project's tracked files, copied with a timestamp line on top of each module. */
function instrumentedCopy(): string {
  const copy = Deno.makeTempDirSync({ prefix: "invoke_ns-startup-" });
  const listed = new Deno.Command("git", { args: ["ls-files"], cwd: root }).outputSync();
  if (!listed.success) throw new Error("git ls-files failed: run this from a clone");
  for (const path of new TextDecoder().decode(listed.stdout).split("\n").filter(Boolean)) {
    const target = `${copy}/${path}`;
    Deno.mkdirSync(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    let text = Deno.readTextFileSync(`${root}${path}`);
    if (path.endsWith(".ts") && !path.startsWith("tests/")) {
      text = `((globalThis as any).${MARKS} ??= []).push([${JSON.stringify(path)}, ` +
        `performance.now()]);\n${text}`;
    }
    if (path === "main.ts") {
      text = text.replace(
        "  Deno.exit(await main(Deno.args));",
        `  const status = await main(Deno.args);\n` +
          `  ((globalThis as any).${MARKS}).push(["end of main()", performance.now()]);\n` +
          `  console.error("${MARKS}", JSON.stringify((globalThis as any).${MARKS}));\n` +
          `  Deno.exit(status);`,
      );
    }
    Deno.writeTextFileSync(target, text);
    Deno.chmodSync(target, Deno.statSync(`${root}${path}`).mode! & 0o777);
  }
  return copy;
}

/** Runs `argv`, returns its wall time and the marks it printed on stderr. */
function runOnce(argv: string[]): { wall: number; marks: [string, number][] } {
  const start = performance.now();
  const out = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "piped" })
    .outputSync();
  const wall = performance.now() - start;
  const line = new TextDecoder().decode(out.stderr).split("\n")
    .find((text) => text.startsWith(MARKS));
  return { wall, marks: line ? JSON.parse(line.slice(MARKS.length + 1)) : [] };
}

const copy = instrumentedCopy();
try {
  const tool = [deno, "run", ...flags, `${copy}/main.ts`, ...Deno.args];
  const floor = [deno, "run", `${copy}/bench/empty.ts`];
  runOnce(tool); // fills Deno's caches for the copy
  runOnce(floor);
  const walls: number[] = [], floors: number[] = [], firsts: number[] = [], lasts: number[] = [];
  const spans = new Map<string, number[]>();
  for (let run = 0; run < RUNS; run++) {
    floors.push(runOnce(floor).wall);
    const { wall, marks } = runOnce(tool);
    walls.push(wall);
    if (marks.length < 2) throw new Error(`${Deno.args.join(" ")}: the copy printed no marks`);
    firsts.push(marks[0][1]);
    lasts.push(marks[marks.length - 1][1] - marks[marks.length - 2][1]);
    for (let i = 0; i + 2 < marks.length; i++) {
      const list = spans.get(marks[i][0]) ?? [];
      list.push(marks[i + 1][1] - marks[i][1]);
      spans.set(marks[i][0], list);
    }
  }
  const ms = (value: number) => `${value.toFixed(2).padStart(6)} ms`;
  console.log(`invoke_ns ${Deno.args.join(" ")}: medians of ${RUNS} runs`);
  console.log(`  wall time                         ${ms(median(walls))}`);
  console.log(`  an empty deno run                 ${ms(median(floors))}`);
  console.log(`  first module starts evaluating at ${ms(median(firsts))}`);
  console.log(
    `  modules evaluated: ${spans.size + 1} (each until the next starts, largest first):`,
  );
  const rows = [...spans].map(([name, list]) => [name, median(list)] as const)
    .sort((a, b) => b[1] - a[1]);
  for (const [name, span] of rows.slice(0, 12)) console.log(`    ${name.padEnd(30)}${ms(span)}`);
  console.log(`  last module to the end of main()  ${ms(median(lasts))}`);
} finally {
  Deno.removeSync(copy, { recursive: true });
}
