/**
 * The clone engine itself (ffi/clone.ts), below the launcher: what the JS
 * setup callback can rely on while it runs as Deno's main thread in a child.
 */
import assert from "node:assert/strict";
import { cloneChild } from "../ffi/clone.ts";
import { CLONE } from "../ffi/constants.ts";
import { cacheSchedulingParameters, getpid, waitForExit } from "../ffi/libc.ts";
import { privilegedTest } from "./helpers.ts";

privilegedTest(
  "engine: glibc answers pthread_getschedparam for the main thread in a new PID namespace",
  async () => {
    // V8's mutexes (abseil) ask for the thread's priority when contended. In the
    // child, pthread_self() is Deno's main thread, whose TID does not exist in a
    // new PID namespace: unless glibc already cached the answer (the engine asks
    // once at load), the call fails and abseil prints a line on the command's stderr.
    let seen: { pid: number; error?: string } | undefined;
    const outcome = cloneChild({
      namespaces: CLONE.NEWPID,
      setup: () => {
        seen = { pid: getpid() };
        try {
          cacheSchedulingParameters();
        } catch (error) {
          seen.error = String(error);
        }
      },
    });
    assert.equal(outcome.failure, undefined);
    assert.deepEqual(await waitForExit(outcome.pid), { exited: true, code: 0 });
    assert.deepEqual(seen, { pid: 1 }, "the setup ran as PID 1 and the call succeeded");
  },
);

Deno.test("engine: argv and envp of any size reach the command intact, launch after launch", async () => {
  // The engine writes them into one reused buffer that grows on demand (ffi/clone.ts).
  const dir = await Deno.makeTempDir({ prefix: "invoke_ns_engine_" });
  try {
    for (const size of [10, 40_000, 10, 60_000, 5]) {
      const word = "é".repeat(size); // 2 bytes a character in UTF-8
      const outcome = cloneChild({
        namespaces: 0,
        setup: () => {},
        exec: {
          command: "sh",
          argv: [
            "sh",
            "-c",
            `printf %s "$1" > ${dir}/argv; printf %s "$BIG" > ${dir}/env`,
            "sh",
            word,
          ],
          env: [`BIG=${word}`, "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"],
        },
      });
      assert.equal(outcome.failure, undefined);
      const status = await waitForExit(outcome.pid);
      assert.equal(status.exited && status.code, 0);
      assert.equal(Deno.readTextFileSync(`${dir}/argv`), word, `argv of ${size}`);
      assert.equal(Deno.readTextFileSync(`${dir}/env`), word, `env of ${size}`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
