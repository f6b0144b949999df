/**
 * Network namespace (network_namespaces(7)): the child gets a network stack
 * of its own, holding only a loopback interface that is down, exactly as the
 * kernel creates it.
 *
 * With `--veth`, the namespace comes ready: a veth pair whose host end is
 * named after the tool (`ns<pid>`), whose other end is `eth0` inside, both
 * addressed and up, loopback up, and a default route inside via the host end.
 * All of it through rtnetlink (lib/rtnetlink.ts): no `ip` binary.
 *
 * Design: the clone engine suspends the parent until the child execs, so the
 * namespace cannot be configured from outside while the command starts.
 * Instead the parent's main thread creates and configures the namespace
 * *before* `clone` (`unshare(CLONE_NEWNET)` moves only the calling thread;
 * `setns` takes it back), and the child is born in it: the main thread joins
 * it just around `clone`, as `enter` does for a PID namespace. The link is
 * therefore ready before the command's first instruction.
 *
 * Cleanup: the parent keeps no reference to the namespace once the child
 * exists, so the namespace, and with it both ends of the pair, goes away when
 * its last process ends, even if the parent was killed (with `-p`, the whole
 * namespace dies with the parent through PR_SET_PDEATHSIG). The launcher also
 * deletes the host end itself after waiting and on every failed setup. The
 * link is host-only: no NAT, no DNS.
 * @module
 */

import { CLONE } from "../ffi/constants.ts";
import { close, O_CLOEXEC, O_RDONLY, open, setns, unshare } from "../ffi/libc.ts";
import type { Cidr } from "./ipv4.ts";
import type { InterfaceAddress } from "./netlink.ts";
import { LaunchError } from "./supervise.ts";
import { type Call, call, type ParentStep } from "./step.ts";
import type { Reporter } from "./report.ts";

/** The clone flag for a new network namespace. */
export const NET_NAMESPACE = CLONE.NEWNET;

/** What `--veth` asks for. */
export interface VethSpec {
  /** The host end's address, e.g. `10.0.0.1/24` (default: the first free 10.0.N.1/24). */
  host?: string;
  /** The guest end's (`eth0`) address, e.g. `10.0.0.2/24` (default: 10.0.N.2/24). */
  guest?: string;
  /** The host end's name (default `ns<pid>`, then `ns<pid>-<n>`). */
  name?: string;
  /** Add a default route inside via the host end (default true). */
  route?: boolean;
}

/** A network namespace made ready by {@link prepareVeth}. */
export interface PreparedNetwork {
  /** The namespace, open; closed by {@link enterNetwork}'s restore once the child exists. */
  namespaceFd: number;
  /** The host end's name, to delete after the child. */
  hostName: string;
  /** Host and guest addresses, as `a.b.c.d/len`. */
  host: string;
  guest: string;
}

/** The interface name limit (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;
let vethCounter = 0;

/** Why `spec` cannot be used, or null. Checked before anything is created. */
export async function vethProblem(spec: VethSpec): Promise<string | null> {
  const codec = await import("./ipv4.ts");
  const { formatCidr, formatIPv4, networkAddress, parseCidr } = codec;
  try {
    if (spec.host !== undefined) parseCidr(spec.host);
    if (spec.guest !== undefined) parseCidr(spec.guest);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if ((spec.host === undefined) !== (spec.guest === undefined)) {
    return "--veth takes both addresses, HOST_CIDR,GUEST_CIDR, or none";
  }
  if (spec.host && spec.guest) {
    const [host, guest] = [parseCidr(spec.host), parseCidr(spec.guest)];
    for (const [text, cidr] of [[spec.host, host], [spec.guest, guest]] as const) {
      const problem = linkAddressProblem(cidr, codec);
      if (problem) return `${text}: ${problem}`;
    }
    if (formatCidr(networkAddress(host)) !== formatCidr(networkAddress(guest))) {
      return `${spec.host} and ${spec.guest} are not on the same network`;
    }
    if (formatIPv4(host.address) === formatIPv4(guest.address)) {
      return "the host and guest addresses are the same";
    }
  }
  if (spec.name === "." || spec.name === "..") {
    return `"${spec.name}" cannot name an interface`;
  }
  if (spec.name !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(spec.name)) {
    return `${
      JSON.stringify(spec.name)
    }: an interface name is 1-${IFNAME_MAX} of A-Z a-z 0-9 _ . -`;
  }
  return null;
}

/**
 * Why `cidr` cannot be one end of the link, or null: it must be a unicast
 * address, on a network of /8 to /30, and neither that network's own address
 * nor its broadcast address.
 */
function linkAddressProblem(cidr: Cidr, codec: CidrCodec): string | null {
  const first = cidr.address[0];
  if (first === 0 || first === 127 || first >= 224) {
    return "not a unicast address for a link (0.x, 127.x loopback, 224 and up multicast/reserved)";
  }
  if (cidr.prefixLength < 8 || cidr.prefixLength > 30) {
    return "the prefix length must be 8 to 30 (a network with room for both ends)";
  }
  const { formatIPv4, networkAddress, broadcastAddress } = codec;
  const address = formatIPv4(cidr.address);
  if (address === formatIPv4(networkAddress(cidr).address)) {
    return "that is the network's own address";
  }
  if (address === formatIPv4(broadcastAddress(cidr))) {
    return "that is the network's broadcast address";
  }
  return null;
}

/** The host address among `used` whose network overlaps `cidr`'s, if any. */
function addressInUse(cidr: Cidr, used: InterfaceAddress[], codec: CidrCodec): string | undefined {
  const found = used.find((entry) =>
    codec.networksOverlap(cidr, {
      address: codec.parseIPv4(entry.address),
      prefixLength: entry.prefixLength,
    })
  );
  return found && `${found.address}/${found.prefixLength}`;
}

/** The CIDR helpers of lib/ipv4.ts, loaded only when a veth is asked for. */
type CidrCodec = typeof import("./ipv4.ts");

/** The first 10.0.N.0/24 with no address of the host's in it. */
function freeSubnet(used: string[]): number {
  const taken = new Set(
    used.map((address) => address.split(".").map(Number))
      .filter(([a, b]) => a === 10 && b === 0)
      .map((octets) => octets[2]),
  );
  for (let n = 0; n < 256; n++) if (!taken.has(n)) return n;
  throw new LaunchError(
    "veth",
    "no free 10.0.N.0/24 network on this host: give the host's and the guest's addresses",
    "setup",
  );
}

/** Serialises address choice between concurrent launches (one host, many tools). */
async function withHostLock<T>(fn: () => T): Promise<T> {
  const lock = await Deno.open("/run/invoke_ns.veth.lock", { create: true, write: true });
  try {
    await lock.lock(true);
    return fn();
  } finally {
    lock.close();
  }
}

/**
 * Parent step, before clone: creates a network namespace with a veth pair to
 * the host, configured as `spec` says. On failure nothing is left behind.
 */
export async function prepareVeth(spec: VethSpec): Promise<PreparedNetwork> {
  // Loaded only when asked for: a plain launch does without the netlink code.
  const { RouteSocket } = await import("./rtnetlink.ts");
  const codec = await import("./ipv4.ts");
  const { formatIPv4, parseCidr } = codec;
  const name = spec.name ??
    (vethCounter++ === 0 ? `ns${Deno.pid}` : `ns${Deno.pid}-${vethCounter}`);
  return await withHostLock(() => {
    const hostSocket = new RouteSocket();
    const hostNamespace = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    let namespaceFd = -1;
    let created = false;
    try {
      let host = spec.host;
      let guest = spec.guest;
      const used = hostSocket.listAddresses();
      if (host === undefined || guest === undefined) {
        const n = freeSubnet(used.map((entry) => entry.address));
        [host, guest] = [`10.0.${n}.1/24`, `10.0.${n}.2/24`];
      } else {
        const taken = addressInUse(parseCidr(host), used, codec);
        if (taken) {
          throw new LaunchError(
            "veth",
            `${host}: the host already has ${taken} on that network; choose another`,
            "setup",
          );
        }
      }
      unshare(CLONE.NEWNET);
      let guestSocket: InstanceType<typeof RouteSocket>;
      try {
        namespaceFd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        guestSocket = new RouteSocket();
      } finally {
        setns(hostNamespace, CLONE.NEWNET, "host network namespace");
      }
      try {
        hostSocket.createVethPair(name, "eth0", namespaceFd);
        created = true;
        const hostIndex = hostSocket.linkIndex(name)!;
        hostSocket.addAddress(hostIndex, host);
        hostSocket.setLinkUp(hostIndex);
        guestSocket.setLinkUp(guestSocket.linkIndex("lo")!);
        const guestIndex = guestSocket.linkIndex("eth0")!;
        guestSocket.addAddress(guestIndex, guest);
        guestSocket.setLinkUp(guestIndex);
        if (spec.route !== false) {
          guestSocket.addDefaultRoute(formatIPv4(parseCidr(host).address), guestIndex);
        }
      } finally {
        guestSocket.close();
      }
      return { namespaceFd, hostName: name, host, guest };
    } catch (error) {
      if (created) hostSocket.deleteLink(name);
      if (namespaceFd >= 0) close(namespaceFd);
      throw error;
    } finally {
      close(hostNamespace);
      hostSocket.close();
    }
  });
}

/**
 * Moves the calling thread into `network`'s namespace, so that a child cloned
 * now is born there; returns the function that moves it back and closes the
 * namespace (the child holds it from then on).
 */
export function enterNetwork(network: PreparedNetwork): () => void {
  const saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  try {
    setns(network.namespaceFd, CLONE.NEWNET, "veth network namespace");
  } catch (error) {
    close(saved);
    throw error;
  }
  return () => {
    try {
      setns(saved, CLONE.NEWNET, "host network namespace");
    } finally {
      close(saved);
      close(network.namespaceFd);
      network.namespaceFd = -1;
    }
  };
}

/** Parent step, after the child or on failure: deletes the host end if it is still there. */
export async function removeVeth(network: PreparedNetwork): Promise<void> {
  if (network.namespaceFd >= 0) close(network.namespaceFd);
  network.namespaceFd = -1;
  const { RouteSocket } = await import("./rtnetlink.ts");
  const socket = new RouteSocket();
  try {
    socket.deleteLink(network.hostName);
  } finally {
    socket.close();
  }
}

/**
 * A netlink request as a step lists it: sendto(2) of one message of `type`
 * on `socket`, with the attributes that say what it asks for.
 */
function netlinkCall(socket: string, type: string, attributes?: string): Call {
  return call("sendto", socket, `[{nlmsg_type=${type}}${attributes ? `, {${attributes}}` : ""}]`);
}

const HOST_SOCKET = "<host route socket>", GUEST_SOCKET = "<namespace route socket>";

/** socket(2) of a route socket, as a step lists it (its bind and setsockopt are helpers). */
function routeSocketCall(returns: string): Call {
  return { ...call("socket", "AF_NETLINK", "SOCK_RAW|SOCK_CLOEXEC", "NETLINK_ROUTE"), returns };
}

/**
 * The calls of {@link prepareVeth} for `spec`, in order (the opens of
 * /proc/thread-self/ns/net are helpers): list the host's addresses (a free
 * /24, or a clash with the one asked for), make the namespace and a route
 * socket in it, the veth pair from the host with its peer sent there, the
 * host end's address and link, then inside lo, eth0 and the default route.
 */
export function vethCalls(spec: VethSpec): Call[] {
  const name = spec.name ?? "<host-end>";
  const host = spec.host ?? "<host-cidr>", guest = spec.guest ?? "<guest-cidr>";
  return [
    routeSocketCall(HOST_SOCKET),
    netlinkCall(HOST_SOCKET, "RTM_GETADDR"),
    call("unshare", "CLONE_NEWNET"),
    routeSocketCall(GUEST_SOCKET),
    call("setns", "<the tool's network namespace>", "CLONE_NEWNET"),
    netlinkCall(
      HOST_SOCKET,
      "RTM_NEWLINK",
      `IFLA_IFNAME="${name}", IFLA_INFO_KIND="veth", peer IFLA_IFNAME="eth0" in IFLA_NET_NS_FD`,
    ),
    netlinkCall(HOST_SOCKET, "RTM_GETLINK", `IFLA_IFNAME="${name}"`),
    netlinkCall(HOST_SOCKET, "RTM_NEWADDR", `IFA_LOCAL=${host}`),
    netlinkCall(HOST_SOCKET, "RTM_NEWLINK", "ifi_flags=IFF_UP"),
    netlinkCall(GUEST_SOCKET, "RTM_GETLINK", 'IFLA_IFNAME="lo"'),
    netlinkCall(GUEST_SOCKET, "RTM_NEWLINK", "ifi_flags=IFF_UP"),
    netlinkCall(GUEST_SOCKET, "RTM_GETLINK", 'IFLA_IFNAME="eth0"'),
    netlinkCall(GUEST_SOCKET, "RTM_NEWADDR", `IFA_LOCAL=${guest}`),
    netlinkCall(GUEST_SOCKET, "RTM_NEWLINK", "ifi_flags=IFF_UP"),
    ...spec.route === false
      ? []
      : [netlinkCall(GUEST_SOCKET, "RTM_NEWROUTE", "RTA_GATEWAY=<host address>")],
  ];
}

/** The calls of {@link removeVeth}: deleting the host end deletes both. */
export function removeVethCalls(spec: VethSpec): Call[] {
  return [
    routeSocketCall(HOST_SOCKET),
    netlinkCall(HOST_SOCKET, "RTM_DELLINK", `IFLA_IFNAME="${spec.name ?? "<host-end>"}"`),
  ];
}

/** What `--trace` learns of `network`: the host end's name and the addresses. */
export function vethValues(network: PreparedNetwork): Record<string, string> {
  return {
    "<host-end>": network.hostName,
    "<host-cidr>": network.host,
    "<guest-cidr>": network.guest,
    "<host address>": network.host.replace(/\/\d+$/, ""),
  };
}

/**
 * The tool's steps for a veth link (`--veth`), before clone: the network
 * namespace and the pair made, then the tool's thread entered into it, so
 * that the child is born there (both undone: the pair when the launch
 * ends, the thread's namespace as soon as the child exists).
 */
export function vethParentSteps(
  veth: VethSpec,
  reporter: Reporter,
  state: { network?: PreparedNetwork },
): ParentStep[] {
  const steps: ParentStep[] = [];
  steps.push({
    name: "veth",
    calls: vethCalls(veth),
    why: "a network namespace with a veth pair to the host, ready before the child is born",
    learnt: () => state.network ? vethValues(state.network) : {},
    run: async () => {
      state.network = await prepareVeth(veth);
      const network = state.network;
      reporter.parent(`veth ${network.hostName} ${network.host} <-> eth0 ${network.guest}`);
    },
    undo: () => state.network && removeVeth(state.network),
    undoing: {
      name: "veth",
      calls: removeVethCalls(veth),
      why: "the veth pair goes with the launch: deleting the host end deletes both",
    },
  });
  let restore: (() => void) | undefined;
  steps.push({
    name: "netns",
    calls: [call("setns", "<veth namespace>", "CLONE_NEWNET")],
    why: "the clone child is born in the thread's network namespace",
    run: () => {
      restore = enterNetwork(state.network!);
    },
    learnt: (): Record<string, string> =>
      state.network ? { "<veth namespace>": String(state.network.namespaceFd) } : {},
    undo: () => restore?.(),
    undoAfterClone: true,
    undoing: {
      name: "netns",
      calls: [call("setns", "<the tool's network namespace>", "CLONE_NEWNET")],
      why: "the tool's thread goes back to its own network namespace once the child is born",
    },
  });
  return steps;
}
