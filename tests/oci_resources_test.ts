/** `linux.resources` to cgroup files (lib/oci/cgroups.ts's resourceWrites): a table, v1 and v2. */

import assert from "node:assert/strict";
import { type ContainerResources, resourceWrites } from "../lib/oci/cgroups.ts";

const v1 = () => 1 as const;
const v2 = () => 2 as const;

/** [what, resources, cgroup version, the writes as "controller file=value"]. */
const TABLE: [string, Partial<ContainerResources>, () => 1 | 2, string[]][] = [
  ["nothing", {}, v1, []],
  [
    "memory on v1",
    { memoryLimit: 1024, memorySwap: 2048, memoryReservation: 512 },
    v1,
    [
      "memory memory.limit_in_bytes=1024",
      "memory memory.memsw.limit_in_bytes=2048",
      "memory memory.soft_limit_in_bytes=512",
    ],
  ],
  [
    "memory on v2: swap.max is swap less memory",
    { memoryLimit: 1024, memorySwap: 3072, memoryReservation: 512 },
    v2,
    ["memory memory.max=1024", "memory memory.swap.max=2048", "memory memory.low=512"],
  ],
  ["pids", { pids: 20 }, v2, ["pids pids.max=20"]],
  [
    "cpu on v1",
    { cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 512 },
    v1,
    ["cpu cpu.cfs_period_us=100000", "cpu cpu.cfs_quota_us=50000", "cpu cpu.shares=512"],
  ],
  [
    "cpu on v2: cpu.max and runc's shares-to-weight",
    { cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 1024 },
    v2,
    ["cpu cpu.max=50000 100000", "cpu cpu.weight=39"],
  ],
  ["no quota on v2", { cpuQuota: -1 }, v2, ["cpu cpu.max=max 100000"]],
  ["cpuset", { cpus: "0-1", mems: "0" }, v1, ["cpuset cpuset.cpus=0-1", "cpuset cpuset.mems=0"]],
  [
    "devices: the rules, then runc's allowed ones",
    { devices: [{ allow: false, type: "a", major: "*", minor: "*", access: "rwm" }] },
    v1,
    [
      "devices devices.deny=a",
      "devices devices.allow=c *:* m",
      "devices devices.allow=b *:* m",
      "devices devices.allow=c 136:* rwm",
      "devices devices.allow=c 5:2 rwm",
      "devices devices.allow=c 5:1 rwm",
    ],
  ],
  [
    "an allow-all rule with fewer rights than rwm names both kinds (a bare a is rwm)",
    { devices: [{ allow: true, type: "a", major: "*", minor: "*", access: "r" }] },
    v1,
    [
      "devices devices.allow=c *:* r",
      "devices devices.allow=b *:* r",
      "devices devices.allow=c *:* m",
      "devices devices.allow=b *:* m",
      "devices devices.allow=c 136:* rwm",
      "devices devices.allow=c 5:2 rwm",
      "devices devices.allow=c 5:1 rwm",
    ],
  ],
];

for (const [what, resources, version, expected] of TABLE) {
  Deno.test(`resource writes (${what})`, () => {
    const writes = resourceWrites({ devices: [], ...resources }, version);
    assert.deepEqual(writes.map((w) => `${w.controller} ${w.file}=${w.value}`), expected);
  });
}
