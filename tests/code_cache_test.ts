/**
 * The costliest functions a run of the run form calls are compiled with their
 * modules, so Deno's code cache holds them (docs/performance.md, "The run
 * form's functions come from the code cache"). V8's own log of function
 * events is the referee: a plain function declaration is compiled lazily
 * (`parse-function`) when first called, on every run; a marked one is
 * compiled with its module (`full-parse` as the script is compiled) and, once
 * cached, not at all.
 * @module
 */

import assert from "node:assert/strict";
import { privilegedTest, RUN_FLAGS, withTempDir } from "./helpers.ts";

const root = new URL("..", import.meta.url).pathname;
const MARKER = "// Compiled with its module, so Deno's code cache keeps it: docs/performance.md";

/** Every marked function: its module (relative to the project) and its name. */
function markedFunctions(): { file: string; name: string }[] {
  const found: { file: string; name: string }[] = [];
  const visit = (relative: string) => {
    for (const entry of Deno.readDirSync(`${root}${relative}`)) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory && ["cli", "lib", "ffi", "jail"].includes(path.split("/")[0])) {
        visit(path);
      } else if (entry.isFile && path.endsWith(".ts") && (relative || path === "main.ts")) {
        const lines = Deno.readTextFileSync(`${root}${path}`).split("\n");
        lines.forEach((line, i) => {
          if (line.trim() !== MARKER) return;
          // deno fmt may break the line after the '='
          const declaration = `${lines[i + 1]} ${lines[i + 2].trim()}`;
          const declared = declaration.match(
            /^(?:export )?const (\w+) = \((?:async )?function \1\b/,
          );
          if (!declared) {
            throw new Error(`${path}:${i + 2}: the marker is not above '(function NAME'`);
          }
          found.push({ file: path, name: declared[1] });
        });
      }
    }
  };
  visit("");
  return found;
}

/**
 * V8's function events of one run of the run form, by function: `events(file, name)`. V8's
 * log names a function and its start in the emitted JavaScript (the offset of its parameter
 * list), but not reliably its script (deserialized scripts share IDs), so a function is found by
 * its name and where Deno's emit (in `denoDir`) puts it.
 */
async function functionEvents(denoDir: string, log: string, extra: string[]) {
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...RUN_FLAGS,
      ...extra,
      `--v8-flags=--log-function-events,--logfile=${log},--no-logfile-per-isolate`,
      `${root}main.ts`,
      "-pmI",
      "-u",
      "x",
      "/bin/true",
    ],
    env: { DENO_DIR: denoDir },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  const prefix = `file://${root}`;
  const byFunction = new Map<string, Set<string>>();
  const deserialized = new Set<string>();
  for (const fields of Deno.readTextFileSync(log).split("\n").map((line) => line.split(","))) {
    if (fields[0] !== "function") continue;
    // function,EVENT,SCRIPT,START,END,MS,TIME,NAME (a deserialized script: NAME is its URL)
    if (fields[1] === "deserialize" && fields[7]?.startsWith(prefix)) {
      deserialized.add(fields[7].slice(prefix.length));
    }
    const key = `${fields[7]}@${fields[3]}`;
    if (!byFunction.has(key)) byFunction.set(key, new Set());
    byFunction.get(key)!.add(fields[1]);
  }
  const events = (file: string, name: string) => {
    const emitted = Deno.readTextFileSync(`${denoDir}/gen/file${root}${file}.js`);
    const at = emitted.indexOf(`function ${name}(`);
    assert(at >= 0, `${file}: no function ${name} in Deno's emit`);
    return byFunction.get(`${name}@${at + `function ${name}`.length}`) ?? new Set<string>();
  };
  return { events, deserialized };
}

/** The control: launch() is a plain declaration (it is public API), compiled when called. */
const CONTROL = { file: "lib/launch.ts", name: "launch" };

privilegedTest("code cache: the marked functions are compiled with their modules", async () => {
  const marked = markedFunctions();
  assert(marked.length >= 20, `only ${marked.length} marked functions`);
  assert(marked.some(({ name }) => name === "planLaunch"), "planLaunch is not marked");
  await withTempDir(async (dir) => {
    const { events } = await functionEvents(`${dir}/deno`, `${dir}/v8.log`, ["--no-code-cache"]);
    assert(
      events(CONTROL.file, CONTROL.name).has("parse-function"),
      "the control: no lazy compile",
    );
    for (const { file, name } of marked) {
      const seen = events(file, name);
      assert(seen.has("full-parse"), `${file} ${name}: not compiled with its module`);
      assert(!seen.has("parse-function"), `${file} ${name}: compiled lazily, when called`);
    }
  });
});

privilegedTest("code cache: a run with Deno's code cache compiles none of them", async () => {
  const marked = markedFunctions();
  await withTempDir(async (dir) => {
    // The first run fills the caches. The same log path both times: V8 rejects a code cache
    // made under other flags, and the path is one of them.
    await functionEvents(`${dir}/deno`, `${dir}/v8.log`, []);
    Deno.removeSync(`${dir}/v8.log`);
    const { events, deserialized } = await functionEvents(`${dir}/deno`, `${dir}/v8.log`, []);
    assert(
      events(CONTROL.file, CONTROL.name).has("parse-function"),
      "the control: no lazy compile",
    );
    for (const { file, name } of marked) {
      assert(deserialized.has(file), `${file}: not read from the code cache`);
      const compiled = [...events(file, name)].filter((event) =>
        ["full-parse", "parse-function", "interpreter"].includes(event)
      );
      assert.deepEqual(compiled, [], `${file} ${name}: compiled on this run`);
    }
  });
});
