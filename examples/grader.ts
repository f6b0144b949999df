/**
 * A grader for the namespaces lab: checks that a student's running container
 * (given by the PID of its first process, as seen from the host) is PID 1 of
 * its own PID namespace, has a hostname of its own, and has no network but
 * loopback.
 *
 * Usage: sudo deno run --allow-all examples/grader.ts PID (it reads /proc, which Deno
 * grants only with --allow-all)
 * Exit status: 0 when every check passed, 1 otherwise.
 * @module
 */

import { enter, namespacesOf } from "../mod.ts";

const pid = Number(Deno.args[0]);
if (!Number.isInteger(pid) || pid <= 0) {
  console.error("usage: grader.ts PID");
  Deno.exit(2);
}
const ours = new Map(namespacesOf("self").map((ns) => [ns.type, ns.inode]));
const theirs = new Map(namespacesOf(pid).map((ns) => [ns.type, ns.inode]));
const status = Deno.readTextFileSync(`/proc/${pid}/status`);
const innerPid = status.match(/^NSpid:.*\s(\d+)$/m)?.[1];

/** The container's hostname, read by running `cat` in its UTS namespace. */
async function hostnameInside(): Promise<string> {
  const file = await Deno.makeTempFile();
  try {
    await enter(pid, {
      namespaces: ["uts"],
      command: ["sh", "-c", `cat /proc/sys/kernel/hostname > ${file}`],
    });
    return (await Deno.readTextFile(file)).trim();
  } finally {
    await Deno.remove(file);
  }
}

const links = Deno.readTextFileSync(`/proc/${pid}/net/dev`).split("\n").slice(2)
  .filter(Boolean).map((line) => line.split(":")[0].trim());
const inside = theirs.get("uts") !== ours.get("uts") ? await hostnameInside() : "";
const checks: [string, boolean, string][] = [
  [
    "PID 1 of its own PID namespace",
    theirs.get("pid") !== ours.get("pid") && innerPid === "1",
    `its PID inside is ${innerPid}`,
  ],
  [
    "a hostname of its own",
    inside !== "" && inside !== Deno.hostname(),
    inside ? `hostname ${inside}` : "shares the host's UTS namespace",
  ],
  [
    "no network but loopback",
    theirs.get("net") !== ours.get("net") && links.join() === "lo",
    `links: ${links.join(" ")}`,
  ],
];
for (const [what, ok, detail] of checks) console.log(`${ok ? "PASS" : "FAIL"} ${what} (${detail})`);
const passed = checks.filter(([, ok]) => ok).length;
console.log(`${passed}/${checks.length} checks passed`);
Deno.exit(passed === checks.length ? 0 : 1);
