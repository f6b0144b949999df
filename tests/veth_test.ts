/**
 * `--veth`: a link ready before the command starts, traffic both ways between
 * the two ends (and nowhere else), distinct names for concurrent containers,
 * and no link of the tool's left on the host after any ending.
 */
import assert from "node:assert/strict";
import { childrenOf, cliCommand, privilegedTest, runCli, withTempDir } from "./helpers.ts";

/** Names of the host's links that the tool made (ns<pid>...). */
function toolLinks(): string[] {
  return [...Deno.readDirSync("/sys/class/net")].map((entry) => entry.name)
    .filter((name) => /^ns\d+(-\d+)?$/.test(name));
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

privilegedTest("veth: eth0 and lo up inside with the guest address, a default route", async () => {
  const before = toolLinks();
  const ran = await runCli([
    "--veth=10.201.0.1/24,10.201.0.2/24",
    "-pm",
    "sh",
    "-c",
    "mount -t sysfs sysfs /sys; for i in lo eth0; do echo $i $(cat /sys/class/net/$i/flags); done; " +
    "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o -4 addr show eth0; ip route",
  ]);
  assert.equal(ran.code, 0, ran.stderr);
  for (const name of ["lo", "eth0"]) {
    const flags = Number(ran.stdout.match(new RegExp(`^${name} (0x[0-9a-f]+)$`, "m"))?.[1]);
    assert.equal(flags & 1, 1, `${name} is not up`);
  }
  assert.match(ran.stdout, /^lo\neth0$/m);
  assert.match(ran.stdout, /inet 10\.201\.0\.2\/24/);
  assert.match(ran.stdout, /^default via 10\.201\.0\.1 dev eth0/m);
  assert.deepEqual(toolLinks(), before, "the host end was left behind");
});

privilegedTest("veth: TCP from the container to the host end and back", async () => {
  await withTempDir(async (dir) => {
    await Deno.chmod(dir, 0o755);
    const [hostPort, guestPort] = [24_000 + (Deno.pid % 1000), 25_000 + (Deno.pid % 1000)];
    const guestScript = `${dir}/guest.ts`;
    await Deno.writeTextFile(
      guestScript,
      `
      for (let i = 0; ; i++) {
        try {
          const c = await Deno.connect({ hostname: "10.202.0.1", port: ${hostPort} });
          await c.write(new TextEncoder().encode("hello from the container"));
          c.close();
          break;
        } catch (e) { if (i > 200) throw e; await new Promise((r) => setTimeout(r, 25)); }
      }
      const listener = Deno.listen({ hostname: "10.202.0.2", port: ${guestPort} });
      console.log("listening");
      const conn = await listener.accept();
      const buf = new Uint8Array(100);
      const n = await conn.read(buf);
      console.log("guest got: " + new TextDecoder().decode(buf.subarray(0, n!)));
      conn.close();
      listener.close();
      `,
    );
    const [command, ...args] = cliCommand();
    const container = new Deno.Command(command, {
      args: [
        ...args,
        "--veth=10.202.0.1/24,10.202.0.2/24",
        "-pm",
        Deno.execPath(),
        "run",
        "-A",
        guestScript,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).spawn();
    assert.ok(await waitUntil(() => toolLinks().length > 0, 5000), "no host end appeared");
    let listener: Deno.Listener | undefined;
    for (let i = 0; i < 100 && !listener; i++) {
      try {
        listener = Deno.listen({ hostname: "10.202.0.1", port: hostPort });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20)); // address not assigned yet
      }
    }
    assert.ok(listener, "could not listen on the host end");
    const conn = await listener.accept();
    const received = new Uint8Array(100);
    const n = await conn.read(received);
    conn.close();
    listener.close();
    assert.equal(new TextDecoder().decode(received.subarray(0, n!)), "hello from the container");
    let sent = false;
    for (let i = 0; i < 200 && !sent; i++) {
      try {
        const back = await Deno.connect({ hostname: "10.202.0.2", port: guestPort });
        await back.write(new TextEncoder().encode("hello from the host"));
        back.close();
        sent = true;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    assert.ok(sent, "could not connect to the container");
    const output = await container.output();
    const stdout = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(stdout, /^guest got: hello from the host$/m);
    assert.deepEqual(toolLinks(), []);
  });
});

privilegedTest("veth: two containers at once get distinct host ends and networks", async () => {
  const [command, ...args] = cliCommand();
  const start = () =>
    new Deno.Command(command, {
      args: [...args, "--veth", "-p", "sh", "-c", "ip -o -4 addr show eth0; sleep 1"],
      stdout: "piped",
      signal: AbortSignal.timeout(20_000),
    }).spawn();
  const [a, b] = [start(), start()];
  assert.ok(await waitUntil(() => toolLinks().length === 2, 5000), `links: ${toolLinks()}`);
  const [outA, outB] = await Promise.all([a.output(), b.output()]);
  const net = (out: Deno.CommandOutput) =>
    new TextDecoder().decode(out.stdout).match(/inet (10\.0\.\d+)\.2\/24/)?.[1];
  assert.equal(outA.code, 0);
  assert.equal(outB.code, 0);
  assert.ok(net(outA) && net(outB));
  assert.notEqual(net(outA), net(outB), "both containers got the same network");
  assert.deepEqual(toolLinks(), []);
});

privilegedTest("veth: a network already on the host is refused, nothing left behind", async () => {
  const [command, ...args] = cliCommand();
  const first = new Deno.Command(command, {
    args: [
      ...args,
      "--stop-timeout",
      "1",
      "--veth=10.204.0.1/24,10.204.0.2/24",
      "-p",
      "sleep",
      "30",
    ],
    stdout: "null",
  }).spawn();
  try {
    assert.ok(await waitUntil(() => toolLinks().length === 1, 5000), `links: ${toolLinks()}`);
    for (const addresses of ["10.204.0.5/24,10.204.0.6/24", "10.204.0.9/16,10.204.1.1/16"]) {
      const second = await runCli([`--veth=${addresses}`, "-p", "true"]);
      assert.equal(second.code, 125, second.stderr);
      assert.match(
        second.stderr,
        /^invoke_ns: veth: \S+: the host already has 10\.204\.0\.1\/24 on that network; choose another\n$/,
      );
      assert.equal(toolLinks().length, 1, "the refused container left a link");
    }
  } finally {
    first.kill("SIGTERM");
    await first.status;
  }
  assert.deepEqual(toolLinks(), []);
});

privilegedTest("veth: no link is left after a failed command or a SIGKILLed parent", async () => {
  const failed = await runCli(["--veth", "no-such-command-xyz"]);
  assert.equal(failed.code, 127);
  assert.deepEqual(toolLinks(), []);
  const badName = await runCli(["--veth", "--veth-name", "lo", "true"]);
  assert.equal(badName.code, 125);
  assert.match(badName.stderr, /^invoke_ns: veth: RTM_NEWLINK: .*EEXIST.*\n$/);
  assert.deepEqual(toolLinks(), []);
  // a failure in the child, once the link exists: the kernel refuses the time offset
  const childFailed = await runCli(["--veth", "-T", "--boottime", "-99999999999", "true"]);
  assert.equal(childFailed.code, 125, childFailed.stderr);
  assert.match(childFailed.stderr, /^invoke_ns: timens: .*\n$/);
  assert.deepEqual(toolLinks(), []);
  const [command, ...args] = cliCommand();
  const parent = new Deno.Command(command, {
    args: [...args, "--veth", "-p", "sleep", "100"],
    stdout: "null",
  }).spawn();
  assert.ok(
    await waitUntil(() => toolLinks().length === 1 && childrenOf(parent.pid).length === 1, 5000),
  );
  parent.kill("SIGKILL");
  await parent.status;
  assert.ok(await waitUntil(() => toolLinks().length === 0, 2000), `left: ${toolLinks()}`);
});

Deno.test("veth: bad addresses and names are refused with one line", async () => {
  const cases: [string[], RegExp][] = [
    [["--veth=10.0.0.256/24,10.0.0.2/24", "true"], /256 is out of range/],
    [["--veth=10.0.0.1/24", "true"], /expected HOST_CIDR,GUEST_CIDR/],
    [["--veth=10.0.0.1/24,10.0.1.2/24", "true"], /not on the same network/],
    [["--veth=10.0.0.1/24,10.0.0.1/24", "true"], /the same/],
    [["--veth", "--veth-name", "this-name-is-too-long", "true"], /interface name/],
    [["--no-route", "true"], /need --veth/],
    [["--veth=10.9.9.0/24,10.9.9.2/24", "true"], /network's own address/],
    [["--veth=10.9.9.255/24,10.9.9.2/24", "true"], /broadcast address/],
    [["--veth=127.0.0.5/8,127.0.0.6/8", "true"], /not a unicast address/],
    [["--veth=0.0.0.1/24,0.0.0.2/24", "true"], /not a unicast address/],
    [["--veth=224.0.0.1/24,224.0.0.2/24", "true"], /not a unicast address/],
    [["--veth=10.1.1.1/0,10.1.1.2/0", "true"], /prefix length must be 8 to 30/],
    [["--veth=10.1.1.1/31,10.1.1.0/31", "true"], /prefix length must be 8 to 30/],
    [["--veth", "--veth-name", "..", "true"], /cannot name an interface/],
    [["--veth", "10.9.9.1/24,10.9.9.2/24"], /addresses after '='/],
  ];
  for (const [args, pattern] of cases) {
    const ran = await runCli(args);
    assert.equal(ran.code, 2, `${args.join(" ")}: ${ran.stderr}`);
    assert.match(ran.stderr, pattern);
    assert.equal(ran.stderr.trimEnd().split("\n").length, 1);
  }
});

privilegedTest("veth: ns shows the container's link", async () => {
  const [command, ...args] = cliCommand();
  const parent = new Deno.Command(command, {
    args: [
      ...args,
      "--stop-timeout",
      "1",
      "--veth=10.203.0.1/24,10.203.0.2/24",
      "-p",
      "sleep",
      "100",
    ],
    stdout: "null",
  }).spawn();
  try {
    assert.ok(await waitUntil(() => childrenOf(parent.pid).length === 1, 5000));
    await waitUntil(
      () => Deno.readLinkSync(`/proc/${childrenOf(parent.pid)[0]}/exe`).endsWith("sleep"),
      2000,
    );
    const ns = await runCli(["ns", String(childrenOf(parent.pid)[0])]);
    assert.match(ns.stdout, /^ {2}link eth0 up 10\.203\.0\.2\/24$/m);
    assert.match(ns.stdout, /^ {2}link lo up 127\.0\.0\.1\/8$/m);
  } finally {
    parent.kill("SIGTERM");
    await parent.status;
  }
});
