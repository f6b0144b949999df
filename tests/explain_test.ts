/**
 * `--explain` as the student reads it: golden outputs for the lab's commands
 * (seed doc steps 3–8) as root and rootless, for `--contain`, for `enter`
 * by PID and for an OCI bundle (tests/explain_golden/, with the paths of
 * this run replaced by JAIL, BUNDLE, TARGET, STATE, DENO and SRC); and
 * `--explain` creates nothing: no namespace, mount, cgroup, link or queue appears.
 *
 * The goldens hold on any host: what `--explain --contain` predicts from the
 * host is first checked against the host's /proc and bounding set, computed
 * here, and then named in contain.txt: HOST_MASKS stands for the masks (by
 * what each of runc's paths is on this kernel), HOST_DROPS for the
 * PR_CAPBSET_DROP of each capability of the host's bounding set not kept,
 * `len=N` for the default filter's length (it follows the kernel and the
 * bounding set), and capset's sets show every kept capability (on a host
 * without one, checked as the host's, then shown whole). The others name no
 * host fact: programs are `<path of CMD>`, found at run time.
 */

import assert from "node:assert/strict";
import {
  capabilityMask,
  capabilityNames,
  CONTAIN_CAPABILITIES,
  parseCapabilityMask,
} from "../lib/capabilities.ts";
import { CONTAIN_MASKED_PATHS, CONTAIN_READONLY_PATHS } from "../lib/masks.ts";
import {
  isRoot,
  labSteps,
  mountTable,
  NOBODY,
  privilegedTest,
  runCli,
  withCalculusSleeper,
} from "./helpers.ts";

const golden = new URL("./explain_golden/", import.meta.url);
const SOURCES = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** A jail with /proc and a bash the lab's way would have; only its path matters to a plan. */
const jail = isRoot ? Deno.makeTempDirSync({ prefix: "invoke_ns_explain_" }) : "";
if (jail) {
  Deno.chmodSync(jail, 0o755);
  Deno.mkdirSync(`${jail}/proc`);
  globalThis.addEventListener("unload", () => Deno.removeSync(jail, { recursive: true }));
}

/** `text` with this run's paths replaced by their names in the goldens. */
function normalised(text: string, names: Record<string, string>): string {
  let out = text;
  for (const [name, path] of Object.entries(names)) out = out.replaceAll(path, name);
  return out.replaceAll(Deno.execPath(), "DENO").replaceAll(SOURCES, "SRC");
}

/**
 * Compares `text` with the golden file `name` (with INVOKE_NS_UPDATE_GOLDEN=1 set, writes it
 * instead: how the goldens are regenerated; review the diff).
 */
function assertGolden(text: string, name: string): void {
  if (Deno.env.get("INVOKE_NS_UPDATE_GOLDEN") === "1") {
    Deno.writeTextFileSync(new URL(name, golden), text);
  }
  const expected = Deno.readTextFileSync(new URL(name, golden));
  assert.equal(text, expected, `tests/explain_golden/${name}`);
}

for (const { step, args } of labSteps(jail)) {
  for (const [who, asUser] of [["root", undefined], ["rootless", NOBODY]] as const) {
    privilegedTest(`explain: lab step ${step} ${who}`, async () => {
      const ran = await runCli(["--explain", ...args], { asUser });
      assert.equal(ran.code, 0, ran.stderr);
      assertGolden(normalised(ran.stdout, { JAIL: jail }), `lab-${step}-${who}.txt`);
    });
  }
}

privilegedTest("explain: --contain with a jail", async () => {
  const ran = await runCli(["--explain", "--contain", "-u", "box", "-c", jail, "sh"]);
  assert.equal(ran.code, 0, ran.stderr);
  assertGolden(hostIndependent(normalised(ran.stdout, { JAIL: jail })), "contain.txt");
});

/** The calls of the lines of `text` whose step is `step`, and the lines' indices. */
function stepLines(lines: string[], step: string): { at: number[]; calls: string[] } {
  const at = lines.flatMap((line, index) =>
    line.slice(11, 24).trimEnd() === step && line.startsWith("child ") ? [index] : []
  );
  return { at, calls: at.map((index) => lines[index].slice(25).split("  # ")[0]) };
}

/** What `path` is on this host (a /proc path) or in the jail (any other): as --contain probes. */
function kindOnHost(path: string): "directory" | "file" | "missing" {
  try {
    return Deno.statSync(path.startsWith("/proc/") ? path : `${jail}${path}`).isDirectory
      ? "directory"
      : "file";
  } catch {
    return "missing";
  }
}

/**
 * The calls of --contain's masks on this host, by runc's rule as docs/how-it-works.md
 * tells it: the first masked directory gets a read-only tmpfs, bound onto the later ones;
 * the first masked file the detached /dev/null, bound onto the later ones; a read-only
 * path is bound onto itself and remounted read-only; what is missing is skipped.
 */
function hostMasks(): string[] {
  const calls: string[] = [];
  let directory: string | undefined, file: string | undefined;
  for (const path of CONTAIN_MASKED_PATHS) {
    const kind = kindOnHost(path);
    if (kind === "missing") continue;
    const first = kind === "directory" ? directory : file;
    if (first !== undefined) calls.push(`mount("${first}", "${path}", NULL, MS_BIND, NULL)`);
    else if (kind === "directory") {
      calls.push(
        `mount("tmpfs", "${path}", "tmpfs", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, ` +
          `"size=4k,nr_inodes=1,mode=0555")`,
      );
    } else {
      calls.push(
        `move_mount(<clone of /dev/null>, "", AT_FDCWD, "${path}", MOVE_MOUNT_F_EMPTY_PATH)`,
      );
    }
    if (kind === "directory") directory ??= path;
    else file ??= path;
  }
  for (const path of CONTAIN_READONLY_PATHS.filter((p) => kindOnHost(p) !== "missing")) {
    calls.push(
      `mount("${path}", "${path}", NULL, MS_BIND|MS_REC, NULL)`,
      `mount_setattr(<fd of ${path}>, "", AT_EMPTY_PATH|AT_RECURSIVE, ` +
        "{attr_set=MOUNT_ATTR_RDONLY, attr_clr=0, propagation=0, userns_fd=0}, 32)",
    );
  }
  return calls;
}

/** This host's bounding set: what the tool, run by this test, starts with. */
function hostBoundingSet(): bigint {
  const hex = Deno.readTextFileSync("/proc/self/status").match(/^CapBnd:\s*([0-9a-f]+)$/m)![1];
  return parseCapabilityMask(hex);
}

/** A capability set as capset's line shows it. */
function capsetSet(mask: bigint): string {
  return capabilityNames(mask).map((name) => `1<<${name}`).join("|") || "0";
}

/**
 * --contain's explanation with what depends on the host checked against the host and then
 * named (see the module's doc): the masks, by what each of runc's paths is on this host
 * (HOST_MASKS); the bounding set's drops, this host's bounding set less the kept
 * capabilities (HOST_DROPS); capset's sets, the kept capabilities the host has, shown as
 * all of them; the default filter's length, which follows the bounding set and the kernel.
 */
function hostIndependent(text: string): string {
  const lines = text.split("\n");
  const replace = (step: string, expected: string[], name: string) => {
    const { at, calls } = stepLines(lines, step);
    assert.deepEqual(calls, expected, `${step}: as this host makes them`);
    const [first, ...rest] = at;
    lines[first] = `${lines[first].slice(0, 25)}${name}  # ${lines[first].split("  # ")[1]}`;
    for (const index of rest.reverse()) lines.splice(index, 1);
  };
  const host = hostBoundingSet();
  const kept = capabilityMask(CONTAIN_CAPABILITIES);
  // capset first: the other two remove lines
  const capset = stepLines(lines, "capset");
  const sets = (mask: bigint) =>
    `{effective=${capsetSet(mask)}, permitted=${capsetSet(mask)}, inheritable=0}`;
  assert.equal(capset.at.length, 1);
  assert.ok(capset.calls[0].endsWith(`, ${sets(kept & host)})`), capset.calls[0]);
  lines[capset.at[0]] = lines[capset.at[0]].replace(sets(kept & host), sets(kept));
  replace(
    "bounding",
    capabilityNames(host & ~kept).map((name) => `prctl(PR_CAPBSET_DROP, ${name})`),
    "HOST_DROPS",
  );
  replace("masks", hostMasks(), "HOST_MASKS");
  const out = lines.join("\n");
  const filter = out.match(/seccomp\(SECCOMP_SET_MODE_FILTER, 0, \{len=(\d+), filter=/);
  assert.ok(filter && Number(filter[1]) > 40, "the filter's length is shown");
  return out.replace(`{len=${filter![1]},`, "{len=N,");
}

privilegedTest("explain: --json prints the same plan as data", async () => {
  const text = await runCli(["--explain", "-vpmu", "calculus", "bash"]);
  const json = await runCli(["--explain", "--json", "-vpmu", "calculus", "bash"]);
  const plan = JSON.parse(json.stdout);
  assert.equal(plan.event, "plan");
  const calls = plan.steps.flatMap((s: { calls: { fn: string }[] }) => s.calls.map((c) => c.fn));
  const lines = text.stdout.split("\n").slice(1).filter((line) => /^\w+ +\S+ +\w+\(/.test(line));
  assert.deepEqual(calls, lines.map((line) => line.split(/ +/)[2].split("(")[0]));
  assert.ok(calls.length > 5);
  assert.ok(plan.placeholders["<child-pid>"]);
});

privilegedTest("explain: enter by PID", async () => {
  await withCalculusSleeper(async (pid) => {
    const ran = await runCli(["enter", "--explain", String(pid), "hostname"]);
    assert.equal(ran.code, 0, ran.stderr);
    assertGolden(normalised(ran.stdout, { TARGET: `/proc/${pid}/` }), "enter.txt");
  });
});

privilegedTest("explain: an OCI bundle (oci create --explain)", async () => {
  const bundle = Deno.makeTempDirSync({ prefix: "invoke_ns_explain_bundle_" });
  const root = Deno.makeTempDirSync({ prefix: "invoke_ns_explain_state_" });
  try {
    Deno.mkdirSync(`${bundle}/rootfs/proc`, { recursive: true });
    Deno.writeTextFileSync(
      `${bundle}/config.json`,
      JSON.stringify({
        ociVersion: "1.2.0",
        root: { path: "rootfs" },
        process: { args: ["/bin/sh"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } },
        hostname: "box",
        mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
        linux: { namespaces: [{ type: "pid" }, { type: "mount" }, { type: "uts" }] },
      }),
    );
    const ran = await runCli(["oci", "--root", root, "create", "--explain", "-b", bundle, "c1"]);
    assert.equal(ran.code, 0, ran.stderr);
    assertGolden(normalised(ran.stdout, { BUNDLE: bundle, STATE: root }), "oci.txt");
    assert.deepEqual([...Deno.readDirSync(root)], [], "no state directory was made");
  } finally {
    Deno.removeSync(bundle, { recursive: true });
    Deno.removeSync(root, { recursive: true });
  }
});

/** What --explain must not change: namespaces, mounts, cgroups, links, queues. */
function hostState(): string[] {
  const namespaces = new Set<string>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      for (const ns of Deno.readDirSync(`/proc/${entry.name}/ns`)) {
        namespaces.add(Deno.readLinkSync(`/proc/${entry.name}/ns/${ns.name}`));
      }
    } catch {
      // gone meanwhile
    }
  }
  const cgroups: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.isDirectory) continue;
      cgroups.push(`${dir}/${entry.name}`);
      if (depth < 4) walk(`${dir}/${entry.name}`, depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  const list = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].map((entry) => `${dir}/${entry.name}`);
    } catch {
      return [];
    }
  };
  return [
    ...[...namespaces].sort(),
    ...mountTable(),
    ...cgroups.sort(),
    ...list("/sys/class/net").sort(),
    ...list("/dev/mqueue").sort(),
  ];
}

privilegedTest(
  "explain: creates nothing (namespaces, mounts, cgroups, links, queues)",
  async () => {
    const before = hostState();
    for (
      const args of [
        ["-vpmnu", "calculus", "-c", jail, "--tmpfs", "/tmp", "bash"],
        ["--veth", "-pm", "--memory", "64M", "--pids", "20", "sh"],
        ["--contain", "-c", jail, "-T", "-C", "sh"],
        ["-vi", "yes"],
      ]
    ) {
      const ran = await runCli(["--explain", ...args]);
      assert.equal(ran.code, 0, `${args.join(" ")}: ${ran.stderr}`);
    }
    const rootless = await runCli(["--explain", "-pmu", "box", "-c", jail, "sh"], {
      asUser: NOBODY,
    });
    assert.equal(rootless.code, 0, rootless.stderr);
    const after = hostState();
    assert.deepEqual(after.filter((line) => !before.includes(line)), [], "nothing appeared");
  },
);
