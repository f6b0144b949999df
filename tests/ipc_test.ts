/**
 * The seed's message-queue demo (`-i no|yes`) with piped stdin, and the
 * queue removed on every exit path.
 */
import assert from "node:assert/strict";
import { O_CREAT, O_RDWR } from "../ffi/libc.ts";
import { mqClose, mqOpen, mqUnlink } from "../ffi/mqueue.ts";
import { childrenOf, cliCommand, privilegedTest, queueExists, runCli } from "./helpers.ts";

const QUEUE = "/ipc_namespace";

Deno.test("ipc: -i no carries the child's line to the parent, all before the command", async () => {
  const ran = await runCli(["-vi", "no", "sh", "-c", "echo CMD-OUTPUT"], {
    stdin: "hello from the child\n",
  });
  assert.equal(ran.code, 0, ran.stderr);
  const expected = [
    "Parent: opening message queue /ipc_namespace",
    " Child: opening message queue /ipc_namespace",
    "     Child: enter a message to send to the parent process (MAX 80 chars)",
    " Child: sending message to parent",
    " Child: closing message queue /ipc_namespace",
    "Parent: received message from child",
    "    Parent: the following message was received from the child",
    "     >> hello from the child",
    " Child: executing command sh ...",
    "CMD-OUTPUT",
    "Parent: closing message queue /ipc_namespace",
    "Parent: removing message queue /ipc_namespace",
    "Parent: invoke_ns - Finishing up",
  ];
  let at = -1;
  for (const line of expected) {
    const next = ran.stdout.split("\n").indexOf(line, at + 1);
    assert.ok(next > at, `missing or out of order: ${JSON.stringify(line)}\n${ran.stdout}`);
    at = next;
  }
  assert.equal(queueExists(QUEUE), false);
});

Deno.test("ipc: a message longer than 80 characters is cut at 80", async () => {
  const ran = await runCli(["-i", "no"], { stdin: `${"a".repeat(100)}\n` });
  assert.match(ran.stdout, new RegExp(`>> ${"a".repeat(80)}\n`));
  assert.doesNotMatch(ran.stdout, new RegExp("a".repeat(81)));
});

privilegedTest(
  "ipc: -i yes fails to open in the new namespace, at once, and still runs the command",
  async () => {
    const ran = await runCli(["-vi", "yes", "sh", "-c", "echo command-ran"], { stdin: "unused\n" });
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(
      ran.stdout,
      /^ Child: mq_open: \/ipc_namespace \(ENOENT: No such file or directory\)/m,
    );
    assert.match(ran.stdout, /^Parent: no message: the child could not open \/ipc_namespace/m);
    assert.match(ran.stdout, /^command-ran$/m);
    assert.doesNotMatch(ran.stdout, /received message/);
    assert.equal(queueExists(QUEUE), false);
  },
);

Deno.test("ipc: an existing queue is refused with 125 and left alone", async () => {
  const name = `/invoke_ns_test_${Deno.pid}`;
  mqClose(mqOpen(name, O_CREAT | O_RDWR, { maxMessages: 1, messageSize: 8 }));
  try {
    const ran = await runCli(["-i", "no", "--mq-name", name, "true"]);
    assert.equal(ran.code, 125);
    assert.match(ran.stderr, /^invoke_ns: mq_open: .*EEXIST.*remove it or choose another name\n$/);
    assert.equal(queueExists(name), true, "the tool removed a queue it did not create");
  } finally {
    mqUnlink(name);
  }
});

Deno.test("ipc: end of input sends nothing and removes the queue", async () => {
  const ran = await runCli(["-i", "no"], { stdin: "" });
  assert.equal(ran.code, 0);
  assert.match(ran.stdout, /no message: end of input/);
  assert.equal(queueExists(QUEUE), false);
});

/** Starts `invoke_ns -i no sleep 100` and resolves once the child shows its prompt. */
async function atPrompt() {
  const [command, ...args] = cliCommand();
  const process = new Deno.Command(command, {
    args: [...args, "-i", "no", "sleep", "100"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = process.stdout.getReader();
  let seen = "";
  while (!seen.includes(">> ")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const [child] = childrenOf(process.pid);
  assert.ok(child, "no child process found at the prompt");
  const finish = async () => {
    const status = await process.status;
    await process.stdout.cancel();
    await process.stdin.close().catch(() => {});
    const stderr = await new Response(process.stderr).text();
    return { status, stderr };
  };
  return { parent: process.pid, child, finish };
}

Deno.test({
  name: "ipc: Ctrl-C at the prompt ends the child with 130 and removes the queue",
  sanitizeResources: false,
  fn: async () => {
    const run = await atPrompt();
    Deno.kill(run.child, "SIGINT");
    const { status, stderr } = await run.finish();
    assert.equal(status.code, 130, stderr);
    assert.match(stderr, /^invoke_ns: mq: interrupted by SIGINT\n$/);
    assert.equal(queueExists(QUEUE), false);
  },
});

Deno.test({
  name: "ipc: SIGTERM or SIGHUP to the parent at the prompt ends it at once, nothing left",
  sanitizeResources: false,
  fn: async () => {
    for (const signal of ["SIGTERM", "SIGHUP"] as const) {
      const run = await atPrompt();
      const sent = performance.now();
      Deno.kill(run.parent, signal);
      const { status } = await run.finish();
      assert.equal(status.signal, signal);
      assert.ok(performance.now() - sent < 5000, "the parent waited for the prompt's answer");
      for (let i = 0; i < 100 && alive(run.child); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(alive(run.child), 0, "the child outlived its parent");
      assert.equal(queueExists(QUEUE), false);
    }
  },
});

Deno.test({
  name: "ipc: SIGKILL to the parent at the prompt leaves no queue and no child",
  sanitizeResources: false,
  fn: async () => {
    const run = await atPrompt();
    Deno.kill(run.parent, "SIGKILL");
    const { status } = await run.finish();
    assert.equal(status.signal, "SIGKILL");
    for (let i = 0; i < 100 && childrenOf(run.parent).length + alive(run.child) > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(alive(run.child), 0, "the child outlived its parent");
    assert.equal(queueExists(QUEUE), false);
  },
});

function alive(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z") ? 0 : 1;
  } catch {
    return 0;
  }
}

/** The messages the parent says it received, in `stdout`. */
const received = (stdout: string) =>
  [...stdout.matchAll(/received from the child\n {5}>> (.*)\n/g)].map((m) => m[1]);

/**
 * Runs `loops` concurrent loops of `runs` sequential `-i no` runs, each
 * sending a line naming its loop and run, with the queue `name(loop)`; returns
 * what each run printed.
 */
async function concurrentLoops(loops: number, runs: number, name: (loop: number) => string) {
  const results: { sent: string; code: number; stdout: string; stderr: string }[] = [];
  await Promise.all(Array.from({ length: loops }, async (_, loop) => {
    for (let run = 0; run < runs; run++) {
      const sent = `loop-${loop}-run-${run}`;
      const ran = await runCli(["-i", "no", "--mq-name", name(loop)], { stdin: `${sent}\n` });
      results.push({ sent, ...ran });
    }
  }));
  return results;
}

Deno.test("ipc: 16 concurrent -i no loops on one name: each run gets its own line or EEXIST", async () => {
  const name = `/invoke_ns_shared_${Deno.pid}`;
  const results = await concurrentLoops(16, 8, () => name);
  let worked = 0;
  for (const { sent, code, stdout, stderr } of results) {
    assert.doesNotMatch(stdout, /not in this new one/, sent);
    if (code === 125) {
      assert.match(stderr, /^invoke_ns: mq_open: .*EEXIST.*choose another name\n$/, sent);
      continue;
    }
    assert.equal(code, 0, `${sent}: ${stderr}`);
    // exactly one message received, and it is this run's
    assert.deepEqual(received(stdout), [sent], stdout);
    worked++;
  }
  assert.ok(worked > 0, "no run worked at all");
  assert.equal(queueExists(name), false);
});

Deno.test("ipc: 16 concurrent -i no loops with their own --mq-name: each gets exactly its lines", async () => {
  const name = (loop: number) => `/invoke_ns_loop_${Deno.pid}_${loop}`;
  const results = await concurrentLoops(16, 4, name);
  for (const { sent, code, stdout, stderr } of results) {
    assert.equal(code, 0, `${sent}: ${stderr}`);
    assert.deepEqual(received(stdout), [sent], stdout);
    assert.doesNotMatch(stdout, /not in this new one/, sent);
  }
  for (let loop = 0; loop < 16; loop++) assert.equal(queueExists(name(loop)), false);
});
