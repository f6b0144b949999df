/**
 * Each namespace option checked from inside and outside, as root. Every run
 * must leave the host's mount table as it found it.
 */
import assert from "node:assert/strict";
import { cliCommand, mountTable, privilegedTest, runCli } from "./helpers.ts";

async function inside(args: string[], script: string): Promise<string> {
  const before = mountTable();
  const ran = await runCli([...args, "sh", "-c", script]);
  assert.equal(ran.code, 0, `invoke_ns ${args.join(" ")} failed: ${ran.stderr}`);
  assert.deepEqual(mountTable(), before, "the host's mount table changed");
  return ran.stdout;
}

function hostNamespace(type: string): string {
  return Deno.readLinkSync(`/proc/self/ns/${type}`);
}

privilegedTest("uts: -u sets the hostname inside, the host's is unchanged", async () => {
  const host = Deno.hostname();
  assert.equal((await inside(["-u", "calculus"], "hostname")).trim(), "calculus");
  assert.equal(Deno.hostname(), host);
});

privilegedTest("pid: -p makes the command PID 1", async () => {
  assert.equal((await inside(["-p"], "echo $$")).trim(), "1");
  assert.notEqual((await inside([], "echo $$")).trim(), "1");
});

privilegedTest("pid+mount: /proc inside lists only the namespace's processes", async () => {
  const pids = (await inside(["-pm"], "ls /proc | grep -E '^[0-9]+$'")).trim().split("\n");
  assert.ok(pids.includes("1"));
  assert.ok(pids.length <= 4, `expected only a few PIDs, saw ${pids.join(" ")}`);
  const self = (await inside(["-pm"], "readlink /proc/self/ns/pid; readlink /proc/1/ns/pid"))
    .trim().split("\n");
  assert.equal(self[0], self[1], "/proc/1 inside is not the namespace's init");
  assert.notEqual(self[0], hostNamespace("pid"));
});

privilegedTest("mount: a mount made inside never shows on the host", async () => {
  const target = await Deno.makeTempDir({ prefix: "invoke_ns_mnt_" });
  try {
    const seen = await inside(
      ["-m"],
      `mount -t tmpfs inner ${target} && grep -c ' ${target} ' /proc/self/mountinfo`,
    );
    assert.equal(seen.trim(), "1");
    const host = Deno.readTextFileSync("/proc/self/mountinfo");
    assert.ok(!host.includes(` ${target} `), "the tmpfs leaked to the host");
  } finally {
    await Deno.remove(target);
  }
});

privilegedTest("net: -n leaves only a loopback interface, down", async () => {
  const dev = await inside(["-n"], "cat /proc/net/dev");
  const interfaces = dev.split("\n").slice(2).filter(Boolean).map((line) =>
    line.split(":")[0].trim()
  );
  assert.deepEqual(interfaces, ["lo"]);
  const sysfs = "mount -t sysfs sysfs /sys && ls /sys/class/net && cat /sys/class/net/lo/flags";
  const [names, flags] = (await inside(["-nm"], sysfs)).trim().split("\n");
  assert.equal(names, "lo");
  assert.equal(Number(flags) & 1, 0, "lo is up (IFF_UP set)");
});

privilegedTest("every namespace flag gives a namespace that differs from the host's", async () => {
  const cases: [string[], string][] = [
    [["-p"], "pid_for_children"],
    [["-m"], "mnt"],
    [["-u", "x"], "uts"],
    [["-n"], "net"],
    [["-I"], "ipc"],
    [["-U"], "user"],
    [["-C"], "cgroup"],
    [["-T"], "time"],
  ];
  for (const [args, type] of cases) {
    const nsFile = type === "pid_for_children" ? "pid" : type;
    const seen = (await inside(args, `readlink /proc/self/ns/${nsFile}`)).trim();
    assert.match(seen, new RegExp(`^${nsFile}:\\[\\d+\\]$`));
    assert.notEqual(seen, hostNamespace(nsFile), `${args.join(" ")} did not isolate ${type}`);
  }
  const plain = (await inside([], "readlink /proc/self/ns/uts")).trim();
  assert.equal(plain, hostNamespace("uts"), "without -u the UTS namespace must be the host's");
});

privilegedTest("-v: the seed's messages, complete and in order through a pipe", async () => {
  const ran = await runCli(["-vpmu", "calculus", "sh", "-c", "echo command-output"]);
  assert.equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^Parent: PID of parent is \d+$/);
  assert.match(lines[1], /^Parent: PID of child is \d+$/);
  assert.equal(lines[2], " Child: PID of child is 1");
  assert.equal(lines[3], " Child: executing command sh ...");
  assert.equal(lines[4], "command-output");
  assert.equal(lines[5], "Parent: invoke_ns - Finishing up");
  assert.equal(lines.length, 6);
  const outer = Number(lines[1].split(" ").pop());
  const parent = Number(lines[0].split(" ").pop());
  assert.ok(outer > parent, "the child's outer PID should follow the parent's");
});

privilegedTest("time: -T --boottime shifts /proc/uptime inside only", async () => {
  const day = 86_400;
  const hostUptime = () => Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  const before = hostUptime();
  const shifted = Number(
    (await inside(["-T", "--boottime", String(day)], "cat /proc/uptime"))
      .split(" ")[0],
  );
  const after = hostUptime();
  assert.ok(shifted >= before + day && shifted <= after + day + 1, `uptime ${shifted}`);
});

privilegedTest(
  "mnt: mounts made inside stay out of an outer mount namespace whose / is shared",
  async () => {
    // These machines' / is private, so a container's mounts could not leak here
    // whatever the tool did. An outer namespace of the test's own, made shared
    // (as / is on a systemd host), can see a leak; the host stays untouched.
    const dir = await Deno.makeTempDir({ prefix: "invoke_ns_shared_" });
    try {
      const tag = `invoke-ns-shared-${Deno.pid}`;
      const before = mountTable();
      const outer = async (inner: string[]) => {
        const script = [
          'grep -q " / / .* shared:" /proc/self/mountinfo && echo outer-is-shared',
          `"$@" sh -c 'mount -t tmpfs ${tag} ${dir}' || echo "inner failed: $?"`,
          `echo "seen outside: $(grep -c ' ${tag} ' /proc/self/mountinfo)"`,
        ].join("\n");
        const out = await new Deno.Command("unshare", {
          args: ["-m", "--propagation", "shared", "sh", "-c", script, "sh", ...inner],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
        assert.match(text, /^outer-is-shared$/m, "the outer namespace's / is not shared");
        assert.doesNotMatch(text, /inner failed/, text + new TextDecoder().decode(out.stderr));
        return text;
      };
      // The control: a plain new mount namespace (propagation unchanged) leaks.
      const leaky = await outer(["unshare", "-m", "--propagation", "unchanged"]);
      assert.match(leaky, /^seen outside: 1$/m, "the control did not leak: the test cannot fail");
      // The tool's mount namespace does not.
      const ours = await outer([...cliCommand(), "-m"]);
      assert.match(ours, /^seen outside: 0$/m, "a mount made inside invoke_ns -m leaked out");
      assert.deepEqual(mountTable(), before, "the host's mount table changed");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
