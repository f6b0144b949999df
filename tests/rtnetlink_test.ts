/**
 * RouteSocket against the kernel, as root, entirely inside throwaway network
 * namespaces: each test starts `unshare --net sleep` processes, enters one
 * with setns on the main thread just long enough to open a RouteSocket
 * there, and checks the result with `nsenter --net=... ip` (iproute2 as a
 * test oracle only). The host's links are compared before and after.
 */
import assert from "node:assert/strict";
import { CLONE } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errors.ts";
import { close, O_CLOEXEC, O_RDONLY, open, setns } from "../ffi/libc.ts";
import { readLink } from "../ffi/files.ts";
import { RouteSocket } from "../lib/rtnetlink.ts";
import { privilegedTest } from "./helpers.ts";

/** A network namespace kept alive by a sleeping process. */
interface ThrowawayNamespace {
  /** The sleeping process's PID (for /proc/PID/ns/net). */
  pid: number;
  /** An open fd of the namespace, for setns and IFLA_NET_NS_FD. */
  fd: number;
  /** A RouteSocket created inside the namespace. */
  socket: RouteSocket;
}

/** Runs `fn` on the main thread inside the network namespace open at `fd`, then comes back. */
function insideNamespace<T>(fd: number, fn: () => T): T {
  const home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  try {
    setns(fd, CLONE.NEWNET);
    try {
      return fn();
    } finally {
      setns(home, CLONE.NEWNET);
    }
  } finally {
    close(home);
  }
}

/** Output of `ip ARGS` run inside `namespace` (the oracle), checked for success. */
function ip(namespace: ThrowawayNamespace, ...args: string[]): string {
  const output = new Deno.Command("nsenter", {
    args: [`--net=/proc/${namespace.pid}/ns/net`, "ip", ...args],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const decoder = new TextDecoder();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return decoder.decode(output.stdout);
}

/** The host's links as `index name` lines, from `ip -o link` (nothing may be added). */
function hostLinks(): string[] {
  const output = new Deno.Command("ip", { args: ["-o", "link"], stdout: "piped" }).outputSync();
  return new TextDecoder().decode(output.stdout).split("\n").filter(Boolean).map((line) =>
    line.split(":").slice(0, 2).join(":")
  );
}

/**
 * Runs `fn` with `count` fresh network namespaces (each with a RouteSocket
 * opened inside it), then kills their processes and closes everything.
 */
async function withNamespaces(
  count: number,
  fn: (...namespaces: ThrowawayNamespace[]) => Promise<void> | void,
): Promise<void> {
  const before = hostLinks();
  const hostNamespace = readLink("/proc/thread-self/ns/net");
  const processes: Deno.ChildProcess[] = [];
  const namespaces: ThrowawayNamespace[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const process = new Deno.Command("unshare", {
        args: ["--net", "sleep", "30"],
        stdin: "null",
        stdout: "null",
      }).spawn();
      processes.push(process);
      const path = `/proc/${process.pid}/ns/net`;
      for (let waited = 0; readLink(path) === hostNamespace; waited += 10) {
        assert.ok(waited < 5000, "unshare --net did not create a namespace");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const fd = open(path, O_RDONLY | O_CLOEXEC);
      const socket = insideNamespace(fd, () => new RouteSocket());
      namespaces.push({ pid: process.pid, fd, socket });
    }
    assert.equal(readLink("/proc/thread-self/ns/net"), hostNamespace);
    await fn(...namespaces);
  } finally {
    for (const { fd, socket } of namespaces) {
      socket.close();
      close(fd);
    }
    for (const process of processes) {
      process.kill("SIGKILL");
      await process.status;
    }
  }
  assert.equal(readLink("/proc/thread-self/ns/net"), hostNamespace);
  assert.deepEqual(hostLinks(), before, "the host's links changed");
}

/** Asserts that `fn` throws the SyscallError `call` with errno name `code`; returns it. */
function assertKernelError(fn: () => unknown, call: string, code: string): SyscallError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SyscallError, `expected ${call} ${code}, got ${caught}`);
  assert.equal(caught.call, call);
  assert.equal(caught.code, code, caught.message);
  assert.doesNotMatch(caught.message, /\n/);
  return caught;
}

privilegedTest("rtnetlink: a veth pair across two namespaces, addressed, up, routed", async () => {
  await withNamespaces(2, (host, guest) => {
    host.socket.createVethPair("vh0", "vp0", guest.fd);
    const hostEnd = host.socket.linkIndex("vh0");
    const guestEnd = guest.socket.linkIndex("vp0");
    assert.ok(hostEnd !== null && guestEnd !== null);
    assert.equal(host.socket.linkIndex("vp0"), null, "the peer was not created in the guest");
    assert.equal(guest.socket.linkIndex("vh0"), null);

    host.socket.addAddress(hostEnd, "10.0.0.1/24");
    host.socket.setLinkUp(hostEnd);
    guest.socket.addAddress(guestEnd, "10.0.0.2/24");
    guest.socket.setLinkUp(guestEnd);
    guest.socket.addDefaultRoute("10.0.0.1", guestEnd);

    assert.match(ip(host, "-o", "-4", "addr", "show", "dev", "vh0"), /inet 10\.0\.0\.1\/24 /);
    assert.match(ip(guest, "-o", "-4", "addr", "show", "dev", "vp0"), /inet 10\.0\.0\.2\/24 /);
    assert.match(ip(host, "-o", "link", "show", "vh0"), /^\d+: vh0@if\d+: <[A-Z_,]*\bUP\b/);
    assert.match(ip(guest, "-o", "link", "show", "vp0"), /^\d+: vp0@if\d+: <[A-Z_,]*\bUP\b/);
    assert.equal(ip(guest, "route", "show", "default").trim(), "default via 10.0.0.1 dev vp0");
    assert.match(ip(guest, "-d", "route", "show", "default"), /proto boot scope global/);

    // A TCP connection to a closed port in the host namespace is refused (a
    // reset came back): packets cross the pair both ways.
    const connect = new Deno.Command("nsenter", {
      args: [
        `--net=/proc/${guest.pid}/ns/net`,
        "timeout",
        "5",
        "bash",
        "-c",
        "exec 3<>/dev/tcp/10.0.0.1/9",
      ],
      stderr: "piped",
    }).outputSync();
    assert.match(new TextDecoder().decode(connect.stderr), /Connection refused/);
  });
});

privilegedTest("rtnetlink: listLinks and listAddresses agree with ip", async () => {
  await withNamespaces(1, (namespace) => {
    const { socket } = namespace;
    socket.createVethPair("va", "vb");
    const a = socket.linkIndex("va")!, b = socket.linkIndex("vb")!;
    socket.setLinkUp(socket.linkIndex("lo")!);
    socket.setLinkUp(a);
    socket.addAddress(a, "192.168.7.1/24");
    socket.addAddress(a, "10.9.0.1/16");
    socket.addAddress(b, "192.168.7.2/30");

    const links = socket.listLinks();
    assert.deepEqual(links.map((link) => link.name).sort(), ["lo", "va", "vb"]);
    const oracleLinks = ip(namespace, "-o", "link").trim().split("\n").map((line) => {
      const [, index, name, flags] = line.match(/^(\d+): ([^:@]+)[^:]*: <([^>]*)>/)!;
      return { index: Number(index), name, up: flags.split(",").includes("UP") };
    });
    assert.deepEqual(links.map(({ index, name, up }) => ({ index, name, up })), oracleLinks);
    assert.deepEqual(
      Object.fromEntries(links.map((link) => [link.name, link.up])),
      { lo: true, va: true, vb: false },
    );

    const addresses = socket.listAddresses();
    const oracleAddresses = ip(namespace, "-o", "-4", "addr").trim().split("\n").map((line) => {
      const [, index, address, prefixLength] = line.match(/^(\d+): \S+\s+inet ([\d.]+)\/(\d+)/)!;
      return { index: Number(index), address, prefixLength: Number(prefixLength) };
    });
    assert.deepEqual(addresses, oracleAddresses);
    assert.deepEqual(addresses.filter((entry) => entry.index === a), [
      { index: a, address: "192.168.7.1", prefixLength: 24 },
      { index: a, address: "10.9.0.1", prefixLength: 16 },
    ]);
    assert.deepEqual(addresses.filter((entry) => entry.index === b), [
      { index: b, address: "192.168.7.2", prefixLength: 30 },
    ]);
  });
});

privilegedTest("rtnetlink: duplicates are EEXIST; deleteLink removes both ends", async () => {
  await withNamespaces(2, (host, guest) => {
    host.socket.createVethPair("vh0", "vp0", guest.fd);
    const duplicate = assertKernelError(
      () => host.socket.createVethPair("vh0", "vp1"),
      "RTM_NEWLINK",
      "EEXIST",
    );
    assert.equal(duplicate.message, "RTM_NEWLINK: veth vh0 (EEXIST: File exists)");
    assertKernelError(
      () => host.socket.createVethPair("vh1", "vp0", guest.fd),
      "RTM_NEWLINK",
      "EEXIST",
    );
    const index = host.socket.linkIndex("vh0")!;
    host.socket.addAddress(index, "10.0.0.1/24");
    assertKernelError(() => host.socket.addAddress(index, "10.0.0.1/24"), "RTM_NEWADDR", "EEXIST");
    assert.deepEqual(host.socket.listLinks().map((link) => link.name), ["lo", "vh0"]);

    assert.equal(host.socket.deleteLink("vh0"), true);
    assert.equal(host.socket.linkIndex("vh0"), null);
    assert.equal(guest.socket.linkIndex("vp0"), null, "the peer outlived its pair");
    assert.equal(ip(host, "-o", "link", "show", "type", "veth"), "");
    assert.equal(ip(guest, "-o", "link", "show", "type", "veth"), "");
    assert.equal(host.socket.deleteLink("vh0"), false);
    assert.equal(host.socket.deleteLink("nosuchlink"), false);
  });
});

privilegedTest("rtnetlink: kernel errors name the request and the object", async () => {
  await withNamespaces(1, ({ socket }) => {
    const lo = socket.linkIndex("lo")!;
    const unreachable = assertKernelError(
      () => socket.addDefaultRoute("10.0.0.1", lo),
      "RTM_NEWROUTE",
      "ENETUNREACH",
    );
    assert.match(unreachable.message, /^RTM_NEWROUTE: default via 10\.0\.0\.1 on link 1\b/);
    assertKernelError(() => socket.addAddress(4242, "10.0.0.1/24"), "RTM_NEWADDR", "ENODEV");
    assertKernelError(() => socket.setLinkUp(4242), "RTM_NEWLINK", "ENODEV");
    // IFNAMSIZ is 16 with the NUL: ERANGE from the attribute policy (EINVAL on older kernels).
    assert.throws(
      () => socket.createVethPair("x".repeat(16), "y"),
      (error) => error instanceof SyscallError && /^(ERANGE|EINVAL)$/.test(error.code),
    );
    socket.close();
    assert.throws(() => socket.listLinks(), /^Error: RTM_GETLINK: RouteSocket used after close/);
  });
});
