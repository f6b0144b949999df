import assert from "node:assert/strict";
import { getopt, type OptionSpec, UsageError } from "../cli/getopt.ts";
import { parseRun } from "../cli/run.ts";
import { printable } from "../cli/output.ts";

const specs: OptionSpec[] = [
  { name: "verbose", short: "v", value: "none" },
  { name: "pid", short: "p", value: "none" },
  { name: "uts", short: "u", value: "required" },
  { name: "veth", value: "optional" },
  { name: "map-user", value: "required" },
  { name: "map-group", value: "required" },
];

Deno.test("getopt: clustered letters take the next word as the value", () => {
  const { options, operands } = getopt(["-vpu", "calculus", "bash", "-x"], specs);
  assert.deepEqual(options.map((o) => [o.name, o.value]), [
    ["verbose", undefined],
    ["pid", undefined],
    ["uts", "calculus"],
  ]);
  assert.deepEqual(operands, ["bash", "-x"]);
});

Deno.test("getopt: a value attached to its letter", () => {
  assert.deepEqual(getopt(["-ucalc"], specs).options[0].value, "calc");
});

Deno.test("getopt: stops at the first operand and after --", () => {
  assert.deepEqual(getopt(["-p", "ls", "-l", "-v"], specs).operands, ["ls", "-l", "-v"]);
  assert.deepEqual(getopt(["-p", "--", "-v"], specs).operands, ["-v"]);
  assert.deepEqual(getopt(["-p", "--", "-v"], specs).options.length, 1);
});

Deno.test("getopt: long options with = or a separate value, optional values only with =", () => {
  const { options, operands } = getopt(
    ["--map-user=5", "--map-group", "7", "--veth", "--veth=a,b", "x"],
    specs,
  );
  assert.deepEqual(options.map((o) => [o.name, o.value]), [
    ["map-user", "5"],
    ["map-group", "7"],
    ["veth", undefined],
    ["veth", "a,b"],
  ]);
  assert.deepEqual(operands, ["x"]);
});

Deno.test("getopt: unambiguous prefixes of long names are accepted", () => {
  assert.deepEqual(getopt(["--verb"], specs).options[0].name, "verbose");
  assert.throws(() => getopt(["--map"], specs), /ambiguous/);
});

Deno.test("getopt: bad input is a UsageError with one line", () => {
  for (
    const args of [["-x"], ["-u"], ["--nope"], ["--map-user"], ["--pid=1"], ["-\u0001"]]
  ) {
    assert.throws(() => getopt(args, specs), UsageError);
  }
});

Deno.test("printable: error lines show C0 and C1 controls as \\xNN, the rest as is", () => {
  assert.equal(
    printable("a\u0001b\nc\x1b[2J\x7f\x9b\u00e9\u{1f600}"),
    "a\\x01b\\x0ac\\x1b[2J\\x7f\\x9b\u00e9\u{1f600}",
  );
});

Deno.test("run form: the lab's command lines parse as the seed's", () => {
  const lab = parseRun(["-vpmu", "calculus", "-c", "/var/local/jail", "env", "PS1=x", "bash"]);
  assert.deepEqual(lab.verbose, true);
  assert.deepEqual(lab.spec, {
    command: ["env", "PS1=x", "bash"],
    pid: true,
    mount: true,
    hostname: "calculus",
    jail: "/var/local/jail",
  });
  assert.deepEqual(parseRun(["-vi", "no"]).queueDemo, "/ipc_namespace");
  assert.deepEqual(parseRun(["-vi", "no"]).spec.ipc, undefined);
  assert.deepEqual(parseRun(["-i", "yes"]).spec.ipc, true);
  assert.deepEqual(parseRun(["-I", "true"]).queueDemo, undefined);
  assert.deepEqual(parseRun(["-e", "A=b=c", "-e", "D=", "env"]).spec.env, { A: "b=c", D: "" });
  assert.deepEqual(parseRun(["--boottime", "60"]).spec.time, { boottime: 60 });
  assert.deepEqual(parseRun(["--map-user", "1000"]).spec.user, { uid: 1000 });
});

Deno.test("run form: bad values are usage errors", () => {
  for (
    const args of [
      ["-i", "maybe"],
      ["-e", "novalue"],
      ["-e", "=x"],
      ["--map-user", "-1"],
      ["--map-user", "abc"],
      ["--boottime", "1.5"],
      ["--stop-timeout", "x"],
    ]
  ) {
    assert.throws(() => parseRun(args), UsageError, `accepted ${JSON.stringify(args)}`);
  }
});
