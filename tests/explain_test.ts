/**
 * `--explain` as the student reads it: golden outputs for the lab's commands
 * (seed doc steps 3–8) as root and rootless, for `--contain`, for `enter`
 * by PID and for an OCI bundle (tests/explain_golden/, with the paths of
 * this run replaced by JAIL, BUNDLE, TARGET and DENO); and `--explain`
 * creates nothing: no namespace, mount, cgroup, link or queue appears.
 */

import assert from "node:assert/strict";
import { cliCommand, isRoot, mountTable, NOBODY, privilegedTest, runCli } from "./helpers.ts";

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

const SHELL = ["env", "PS1=ns # ", "bash", "--norc"];
const LAB: { step: string; args: () => string[] }[] = [
  { step: "3", args: () => ["-vp", ...SHELL] },
  { step: "4", args: () => ["-vpm", ...SHELL] },
  { step: "5", args: () => ["-vpmu", "calculus", "bash"] },
  { step: "6", args: () => ["-vpmnu", "calculus", "bash"] },
  { step: "7-no", args: () => ["-vi", "no"] },
  { step: "7-yes", args: () => ["-vi", "yes"] },
  { step: "8", args: () => ["-vpmu", "calculus", "-c", jail, ...SHELL] },
];

for (const { step, args } of LAB) {
  for (const [who, asUser] of [["root", undefined], ["rootless", NOBODY]] as const) {
    privilegedTest(`explain: lab step ${step} ${who}`, async () => {
      const ran = await runCli(["--explain", ...args()], { asUser });
      assert.equal(ran.code, 0, ran.stderr);
      assertGolden(normalised(ran.stdout, { JAIL: jail }), `lab-${step}-${who}.txt`);
    });
  }
}

privilegedTest("explain: --contain with a jail", async () => {
  const ran = await runCli(["--explain", "--contain", "-u", "box", "-c", jail, "sh"]);
  assert.equal(ran.code, 0, ran.stderr);
  const text = normalised(ran.stdout, { JAIL: jail });
  // the default filter's length depends on the host's capabilities: checked, then named
  // (what each masked path gets, and the capabilities dropped, follow this host: a kernel
  // without /proc/kcore and a bounding set without CAP_SYS_RESOURCE, as design.md §7 says)
  const filter = text.match(/seccomp\(SECCOMP_SET_MODE_FILTER, 0, \{len=(\d+), filter=/);
  assert.ok(filter && Number(filter[1]) > 40, "the filter's length is shown");
  assertGolden(text.replace(`{len=${filter![1]},`, "{len=N,"), "contain.txt");
});

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
  const target = new Deno.Command(cliCommand()[0], {
    args: [...cliCommand().slice(1), "-pmu", "calculus", "sleep", "60"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let pid = 0;
    for (let i = 0; i < 300 && pid === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      pid = sleepUnder(target.pid);
    }
    assert.ok(pid > 0, "the target runs");
    const ran = await runCli(["enter", "--explain", String(pid), "hostname"]);
    assert.equal(ran.code, 0, ran.stderr);
    assertGolden(normalised(ran.stdout, { TARGET: `/proc/${pid}/` }), "enter.txt");
  } finally {
    target.kill("SIGKILL");
    await target.status;
  }
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

/** The PID of the sleep a child of `parent` has exec'd (0 if none yet). */
function sleepUnder(parent: number): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const status = Deno.readTextFileSync(`/proc/${entry.name}/status`);
      if (status.includes(`PPid:\t${parent}\n`) && status.includes("Name:\tsleep")) {
        return Number(entry.name);
      }
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}
