/**
 * User, cgroup and time namespaces, as root and rootless (an unprivileged
 * user through setpriv), and the refusal when user namespaces are disabled.
 */
import assert from "node:assert/strict";
import { launch } from "../mod.ts";
import {
  cliCommand,
  cliCommandAs,
  NOBODY,
  privilegedTest,
  readableSources,
  runCli,
  withTempDir,
} from "./helpers.ts";

privilegedTest(
  "user: -U maps root to root, --map-user/--map-group choose the inside IDs",
  async () => {
    const asRoot = await runCli(["-U", "sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
    assert.equal(asRoot.code, 0, asRoot.stderr);
    assert.match(asRoot.stdout, /^0\n0\n\s+0\s+0\s+1\n$/);
    const mapped = await runCli(
      ["-v", "--map-user", "1000", "--map-group", "100", "sh", "-c", "id -u; id -g"],
      { asUser: NOBODY },
    );
    assert.equal(mapped.code, 0, mapped.stderr);
    assert.match(
      mapped.stdout,
      /^Parent: new user namespace: uid 1000 -> 65534, gid 100 -> 65534$/m,
    );
    assert.match(mapped.stdout, /^1000\n100\n/m);
  },
);

privilegedTest("rootless: every seed option works without sudo", async () => {
  const ran = await runCli(
    ["-vpmnu", "calc", "sh", "-c", "id -u; hostname; echo $$; cat /proc/net/dev | tail -n +3"],
    { asUser: NOBODY },
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(
    ran.stdout,
    /^Parent: new user namespace \(implied: you are not root\): uid 0 -> 65534, gid 0 -> 65534$/m,
  );
  assert.match(ran.stdout, /^0\ncalc\n1\n\s*lo:/m);
  const demo = await runCli(["-vi", "yes", "true"], { asUser: NOBODY, stdin: "x\n" });
  assert.equal(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /could not open \/ipc_namespace \(ENOENT\)/);
  const plain = await runCli(["-i", "no"], { asUser: NOBODY, stdin: "hi\n" });
  assert.match(plain.stdout, />> hi\n/);
});

/** The cgroup2 mount point, if the host has one. */
function cgroup2Root(): string | null {
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [mountFields, fsFields] = line.split(" - ");
    if (fsFields?.startsWith("cgroup2 ")) return mountFields.split(" ")[4];
  }
  return null;
}

privilegedTest("cgroup: -C shows the process at the root of its cgroup view", async () => {
  const root = cgroup2Root()!;
  const group = `${root}/invoke_ns_test_${Deno.pid}`;
  await Deno.mkdir(group);
  try {
    const inGroup = async (args: string[], asUser?: number) => {
      const cli = asUser === undefined ? cliCommand() : cliCommandAs(asUser, []);
      const out = await new Deno.Command("sh", {
        args: ["-c", `echo $$ > ${group}/cgroup.procs && exec "$@"`, "sh", ...cli, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return text.split("\n").find((line) => line.startsWith("0::"));
    };
    const name = group.slice(root.length);
    assert.equal(await inGroup(["cat", "/proc/self/cgroup"]), `0::${name}`);
    assert.equal(await inGroup(["-C", "cat", "/proc/self/cgroup"]), "0::/");
    assert.equal(await inGroup(["-C", "cat", "/proc/self/cgroup"], NOBODY), "0::/");
  } finally {
    await Deno.remove(group);
  }
}, cgroup2Root() ? null : "no cgroup2 hierarchy is mounted");

const uptime = (text: string) => Number(text.trim().split(" ")[0]);

privilegedTest("time: -T offsets, root and rootless", async () => {
  const day = 86_400;
  for (const asUser of [undefined, NOBODY]) {
    const before = uptime(Deno.readTextFileSync("/proc/uptime"));
    const ran = await runCli(
      ["--boottime", String(day), "--monotonic", String(2 * day), "cat", "/proc/uptime"],
      { asUser },
    );
    assert.equal(ran.code, 0, ran.stderr);
    const inside = uptime(ran.stdout);
    const after = uptime(Deno.readTextFileSync("/proc/uptime"));
    assert.ok(inside >= before + day && inside <= after + day + 1, `uptime ${inside}`);
  }
});

privilegedTest(
  "time: repeated launch() calls each get their own offsets; the caller is untouched",
  async () => {
    await withTempDir(async (dir) => {
      for (const offset of [1000, 50_000, 0, 7]) {
        const before = uptime(Deno.readTextFileSync("/proc/uptime"));
        const result = await launch({
          command: ["sh", "-c", `cat /proc/uptime > ${dir}/up`],
          time: { boottime: offset },
        });
        assert.deepEqual(result, { code: 0 });
        const inside = uptime(Deno.readTextFileSync(`${dir}/up`));
        assert.ok(
          inside >= before + offset && inside <= before + offset + 2,
          `${offset}: ${inside}`,
        );
        assert.ok(uptime(Deno.readTextFileSync("/proc/uptime")) < before + 2, "the caller moved");
      }
      // and concurrently: four containers alive at once, each with its own offset
      const offsets = [3000, 6000, 9000, 12000];
      const before = uptime(Deno.readTextFileSync("/proc/uptime"));
      const results = await Promise.all(offsets.map((offset) =>
        launch({
          command: [
            "sh",
            "-c",
            `sleep 0.3; cat /proc/uptime > ${dir}/up${offset}; hostname > ${dir}/host${offset}`,
          ],
          time: { boottime: offset },
          hostname: `t${offset}`,
        })
      ));
      assert.deepEqual(results, offsets.map(() => ({ code: 0 })));
      for (const offset of offsets) {
        const inside = uptime(Deno.readTextFileSync(`${dir}/up${offset}`));
        assert.equal(Deno.readTextFileSync(`${dir}/host${offset}`), `t${offset}\n`);
        assert.ok(
          inside >= before + offset && inside <= before + offset + 3,
          `${offset}: ${inside}`,
        );
      }
    });
  },
);

privilegedTest(
  "user: with user namespaces disabled, one line suggests sudo and exits 125",
  async () => {
    // A throwaway user namespace whose own max_user_namespaces is lowered to 0:
    // the host's setting is never touched. The test maps 0-65535 into it itself.
    const deno = `${readableSources()}/deno`;
    const main = `${readableSources()}/main.ts`;
    const script = [
      "read go",
      "echo 0 > /proc/sys/user/max_user_namespaces; cat /proc/sys/user/max_user_namespaces; id",
      `setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups env HOME=/tmp DENO_DIR=/tmp/invoke_ns_deno_dir_${NOBODY} ${deno} run -A ${main} -pmu box true`,
      'echo "rootless=$?"',
      `${deno} run -A ${main} -U true`,
      'echo "root=$?"',
    ].join("\n");
    const shell = new Deno.Command("unshare", {
      // The shell waits for its maps, then execs as root inside to gain the namespace's capabilities.
      args: ["--user", "sh", "-c", 'read go && exec sh -c "$1"', "sh", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const ours = Deno.readLinkSync("/proc/self/ns/user");
    for (let i = 0; i < 500 && Deno.readLinkSync(`/proc/${shell.pid}/ns/user`) === ours; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (const map of ["uid_map", "gid_map"]) {
      await Deno.writeTextFile(`/proc/${shell.pid}/${map}`, "0 0 65536\n");
    }
    const writer = shell.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    const out = await shell.output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr).trimEnd().split("\n");
    assert.match(stdout, /^rootless=125$/m, stdout + stderr.join("\n"));
    assert.match(stdout, /^root=125$/m);
    assert.equal(stderr.length, 2, stderr.join("\n"));
    assert.match(
      stderr[0],
      /^invoke_ns: clone: user namespaces are disabled \(\/proc\/sys\/user\/max_user_namespaces is 0\) \(ENOSPC: .*\); run with sudo instead$/,
    );
    assert.match(stderr[1], /^invoke_ns: clone: user namespaces are disabled .*\(ENOSPC: [^)]*\)$/);
    assert.notEqual(Deno.readTextFileSync("/proc/sys/user/max_user_namespaces").trim(), "0");
  },
);
