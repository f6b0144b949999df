/**
 * Whole ID maps (`--map-users`, `--map-groups`, `--map-auto`): written by the
 * parent while the child waits in the init stage, as root directly and
 * rootless through newuidmap/newgidmap, with a test user that has an
 * /etc/subuid range (CI creates one: `invoke-ns-test`).
 */
import assert from "node:assert/strict";
import { formatIdRange, idRangesProblem, parseIdRange, parseSubordinateIds } from "../lib/user.ts";
import {
  buildTestJail,
  childrenOf,
  isRoot,
  mountTable,
  privilegedTest,
  runCli,
  withTempDir,
} from "./helpers.ts";

/** The test user with a subordinate range (see .ci/run), if this machine has one. */
function testUser(): { uid: number; gid: number; start: number } | null {
  try {
    const line = Deno.readTextFileSync("/etc/passwd").split("\n")
      .find((entry) => entry.startsWith("invoke-ns-test:"));
    if (!line) return null;
    const [, , uid, gid] = line.split(":");
    const range = parseSubordinateIds(Deno.readTextFileSync("/etc/subuid"))
      .find((entry) => entry.owner === "invoke-ns-test" || entry.owner === uid);
    return range ? { uid: Number(uid), gid: Number(gid), start: range.start } : null;
  } catch {
    return null;
  }
}

const user = testUser();
const helpers = (() => {
  try {
    return (Deno.statSync("/usr/bin/newuidmap").mode! & 0o4000) !== 0;
  } catch {
    return false;
  }
})();
const rootlessReady = isRoot && user !== null && helpers;
const whyNot = !isRoot
  ? "needs root"
  : user === null
  ? "no user invoke-ns-test with an /etc/subuid range (.ci/run makes one)"
  : "no setuid /usr/bin/newuidmap (Debian: uidmap)";
if (!rootlessReady) console.log(`ignoring the rootless range tests: ${whyNot}`);

Deno.test("ranges: INNER:OUTER:COUNT parsed; 2.38's comma order refused with the fix", () => {
  assert.deepEqual(parseIdRange("0:100000:65536", "--map-users"), {
    inside: 0,
    outside: 100000,
    count: 65536,
  });
  assert.throws(
    () => parseIdRange("100000,0,65536", "--map-users"),
    /util-linux 2.38's OUTER,INNER,COUNT; write INNER:OUTER:COUNT \(here 0:100000:65536\)/,
  );
  assert.throws(() => parseIdRange("0:1", "--map-users"), /expected INNER:OUTER:COUNT/);
  assert.throws(() => parseIdRange("0:1:0", "--map-users"), /count must be at least 1/);
  assert.throws(() => parseIdRange("0:4294967295:1", "--map-users"), /IDs go up to/);
  const a = { inside: 0, outside: 100, count: 10 }, b = { inside: 5, outside: 500, count: 10 };
  assert.match(idRangesProblem([a, b], "uid")!, /overlap inside/);
  assert.match(
    idRangesProblem([a, { inside: 50, outside: 105, count: 2 }], "gid")!,
    /overlap outside/,
  );
  assert.equal(idRangesProblem([a, { inside: 10, outside: 110, count: 1 }], "uid"), null);
  assert.equal(formatIdRange(a), "0:100:10");
});

Deno.test("ranges: bad ranges are one line and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--map-users", "100000,0,65536", "true"], /write INNER:OUTER:COUNT/],
    [["--map-users", "0:100:10", "--map-users", "5:500:10", "true"], /overlap inside/],
    [["--map-auto", "--map-users", "0:1:1", "true"], /--map-auto chooses the ranges/],
    [["--map-users", "0:100000:10", "--map-user", "3", "true"], /give one ID/],
    [["--map-users", "0:100000:10", "-i", "no"], /-i cannot be combined/],
  ];
  for (const [args, pattern] of cases) {
    const ran = await runCli(args);
    assert.equal(ran.code, 2, `${args.join(" ")}: ${ran.stderr}`);
    const lines = ran.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, ran.stderr);
    assert.match(lines[0], pattern);
  }
});

privilegedTest("ranges as root: the parent writes the maps while the child waits", async () => {
  await withTempDir(async (dir) => {
    // The container's root is host UID 100000 here: it must be able to reach the jail.
    Deno.chmodSync(dir, 0o755);
    const jail = `${dir}/jail`;
    await buildTestJail(jail, ["/bin/sh", "/usr/bin/stat", "/usr/bin/id", "/bin/cat"]);
    Deno.mkdirSync(`${jail}/proc`);
    Deno.writeTextFileSync(`${jail}/owned`, "");
    Deno.chownSync(`${jail}/owned`, 101000, 101001); // inside: 1000 and 1001
    const before = mountTable();
    const ran = await runCli([
      "--map-users",
      "0:100000:65536",
      "--map-groups",
      "0:100000:65536",
      "-pmu",
      "box",
      "-c",
      jail,
      "sh",
      "-c",
      "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c '%u %g' /owned; echo $$",
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stderr, "");
    const lines = ran.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, ["0", "0", "0 100000 65536", "0 100000 65536", "1000 1001", "1"]);
    assert.deepEqual(mountTable(), before);
    assert.deepEqual(childrenOf(Deno.pid), []);
  });
});

Deno.test({
  name: "ranges rootless: --map-auto through newuidmap and newgidmap",
  ignore: !rootlessReady,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { uid, gid, start } = user!;
    const ran = await runCli(
      ["--map-auto", "-pmu", "box", "sh", "-c", "id -u; cat /proc/self/uid_map; hostname"],
      { asUser: uid },
    );
    assert.equal(ran.code, 0, ran.stderr);
    const lines = ran.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, ["0", `0 ${uid} 1`, `1 ${start} 65536`, "box"]);
    // a range that is not the user's is refused before anything is made
    const refused = await runCli(
      ["--map-users", `0:${uid}:1`, "--map-users", "1:1:1000", "-p", "true"],
      { asUser: uid },
    );
    assert.equal(refused.code, 125, refused.stderr);
    assert.match(
      refused.stderr,
      /^invoke_ns: uid_map: UIDs 1-1000 are neither yours nor invoke-ns-test's in \/etc\/subuid\n$/,
    );
    void gid;
  },
});

privilegedTest(
  "ranges: the mount points the init stage made are removed when it ends",
  async () => {
    await withTempDir(async (dir) => {
      Deno.chmodSync(dir, 0o777);
      const before = mountTable();
      const ran = await runCli([
        "--map-users",
        "0:100000:65536",
        "--map-groups",
        "0:100000:65536",
        "-m",
        "--tmpfs",
        `${dir}/made/here`,
        "sh",
        "-c",
        `grep -c " ${dir}/made/here " /proc/self/mountinfo`,
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout.trim(), "1", "the tmpfs was there inside");
      assert.deepEqual([...Deno.readDirSync(dir)], [], "the mount points it made are gone");
      assert.deepEqual(mountTable(), before);
    });
  },
);
