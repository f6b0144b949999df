/**
 * IPC namespace (ipc_namespaces(7)) and the seed's POSIX message-queue demo.
 *
 * `-i no|yes`: the parent creates the queue `/ipc_namespace` (10 messages of
 * 81 bytes) before cloning; the child opens it, asks for one line on stdin
 * and sends it; the parent prints what it received. With `yes` the child is
 * in a new IPC namespace, where the queue does not exist: its `mq_open` fails
 * with ENOENT, which is the point of the demo, and the parent says so at once.
 *
 * The child does its part before it execs, while the parent is suspended. The
 * parent's receiving step runs in the child too, right after the send (on the
 * parent's descriptor and memory, which the child shares): so the parent's
 * lines come out before the command's output, never in the middle of it.
 *
 * Each run owns its queue for its whole life, and removes only the name it
 * created. The parent creates the name exclusively (a concurrent run using
 * the same name is refused with EEXIST until the name is free again). With
 * `-i no` the child checks that the queue it opened by name is the parent's
 * (same inode: nothing replaced it), then unlinks the name at once: from then
 * on the queue lives only as long as the descriptors, so it cannot outlive
 * even a parent killed with SIGKILL while the child waits at the prompt, and
 * the name is free for the next run. The parent unlinks the name only when
 * the child did not (`-i yes`, where the child cannot see it, or a setup step
 * that failed first): the name is still the one it created, because no run
 * removes a name it did not create. The parent closes its side as soon as the
 * child has exec'd, and says so (with `-v`) once the command has ended, as
 * the seed did.
 * @module
 */

import { signalName, SIGNALS } from "../ffi/constants.ts";
import { Errno, SyscallError } from "../ffi/errors.ts";
import { close, O_CREAT, O_EXCL, O_RDWR, O_WRONLY, read } from "../ffi/libc.ts";
import { inodeOf } from "../ffi/mountapi.ts";
import { mqClose, mqGetattr, mqOpen, mqReceive, mqSend, mqUnlink } from "../ffi/mqueue.ts";
import { pollReadable, signalfd } from "../ffi/socket.ts";
import { ChildSetupError } from "../ffi/clone.ts";
import type { Reporter } from "./report.ts";
import { call, type ChildStep, type ParentStep } from "./step.ts";
import { LaunchError } from "./supervise.ts";
import { DEMO_QUEUE } from "./ipcns.ts";

/** Longest message the child sends, in characters (the queue holds one more byte). */
export const MESSAGE_MAX = 80;

/** The demo's state, shared by parent and child (the child runs in the parent's memory). */
export interface QueueDemo {
  /** The queue's name. */
  readonly name: string;
  /** The parent's descriptor. */
  queue: number | null;
  /** The queue's inode (in the parent's mqueue filesystem), to recognise it by. */
  readonly inode: number;
  /** Whether the child is in a new IPC namespace (`-i yes`), where the name does not exist. */
  readonly newNamespace: boolean;
  /**
   * Set by the child once the name is no longer this run's to remove: it
   * unlinked it, or found it gone or replaced (the parent must not unlink it, then).
   */
  released: boolean;
  /** Set by the child when its message was sent. */
  sent: boolean;
  /** Set by the child when it could not open the queue. */
  openError?: SyscallError;
}

/**
 * Parent step: creates the queue (exclusively: an existing one is an error);
 * `newNamespace` tells whether the child will be in a new IPC namespace.
 */
export function openDemoQueue(name: string, newNamespace: boolean, report: Reporter): QueueDemo {
  const queue = mqOpen(name, O_CREAT | O_EXCL | O_RDWR, {
    maxMessages: 10,
    messageSize: MESSAGE_MAX + 1,
  });
  let inode: number;
  try {
    inode = inodeOf(queue);
  } catch (error) {
    mqClose(queue);
    mqUnlink(name);
    throw error;
  }
  report.parent(`opening message queue ${name}`);
  return { name, queue, inode, newNamespace, released: false, sent: false };
}

const INTERRUPTS = [SIGNALS.SIGINT, SIGNALS.SIGQUIT, SIGNALS.SIGTERM, SIGNALS.SIGHUP];

/**
 * Reads one line (at most `max` bytes) from stdin. Signals are blocked in the
 * child during setup, so Ctrl-C is watched for through a signalfd and ends
 * the child with 128+N instead of killing it mid-setup.
 */
function readLine(max: number): Uint8Array | null {
  const signals = signalfd(INTERRUPTS.reduce((mask, n) => mask | (1n << BigInt(n - 1)), 0n));
  try {
    const line = new Uint8Array(max);
    const byte = new Uint8Array(1);
    let length = 0;
    while (length < max) {
      const ready = pollReadable([0, signals], -1);
      if (ready.includes(1)) {
        const info = new Uint8Array(128);
        read(signals, info);
        const signal = new DataView(info.buffer).getUint32(0, true);
        throw new ChildSetupError(
          "mq",
          `interrupted by ${signalName(signal)}`,
          "interrupted",
          undefined,
          signal,
        );
      }
      if (read(0, byte) === 0) return length === 0 ? null : line.subarray(0, length);
      if (byte[0] === 0x0a) break;
      line[length++] = byte[0];
    }
    return line.subarray(0, length);
  } finally {
    close(signals);
  }
}

/** Child step: opens the queue, prompts for a line and sends it. */
export function sendFromChild(demo: QueueDemo, report: Reporter): void {
  report.child(`opening message queue ${demo.name}`);
  let queue: number;
  try {
    queue = mqOpen(demo.name, O_WRONLY);
  } catch (error) {
    if (!(error instanceof SyscallError)) throw error;
    // In the parent's namespace the name is this run's until the child unlinks it:
    // any failure there is a real one, not the demo's point (ENOENT: someone removed it).
    if (!demo.newNamespace) {
      if (error.errno === Errno.ENOENT) demo.released = true;
      throw error;
    }
    demo.openError = error;
    const why = error.errno === Errno.ENOENT
      ? ": the queue is in the parent's IPC namespace, not in this new one"
      : "";
    report.print(` Child: mq_open: ${error.message.replace(/^mq_open: /, "")}${why}\n`);
    return;
  }
  try {
    if (!demo.newNamespace) {
      if (inodeOf(queue) !== demo.inode) {
        demo.released = true;
        throw new ChildSetupError("mq", `${demo.name}: replaced by another process meanwhile`);
      }
      mqUnlink(demo.name);
      demo.released = true;
    }
    const size = mqGetattr(queue).messageSize;
    report.print(
      `\n     Child: enter a message to send to the parent process (MAX ${MESSAGE_MAX} chars)\n` +
        "     >> ",
    );
    const line = readLine(Math.min(size - 1, MESSAGE_MAX));
    report.print("\n");
    if (line === null) {
      report.print(" Child: no message: end of input\n");
    } else {
      report.child("sending message to parent");
      const message = new Uint8Array(line.length + 1);
      message.set(line);
      mqSend(queue, message);
      demo.sent = true;
    }
  } finally {
    report.child(`closing message queue ${demo.name}`);
    mqClose(queue);
  }
}

/**
 * Parent step, run in the child right after {@link sendFromChild} (see the
 * module docs): prints what arrived on the parent's descriptor, if anything.
 */
export function receiveInParent(demo: QueueDemo, report: Reporter): void {
  if (demo.queue === null) return;
  if (demo.openError) {
    report.print(
      `Parent: no message: the child could not open ${demo.name} ` +
        `(${demo.openError.code}), as it is in another IPC namespace\n`,
    );
    return;
  }
  if (!demo.sent) return;
  const size = mqGetattr(demo.queue).messageSize;
  const message = mqReceive(demo.queue, size, 0);
  if (message === null) return;
  report.parent("received message from child");
  const end = message.indexOf(0);
  const text = new TextDecoder().decode(end === -1 ? message : message.subarray(0, end));
  report.print(
    `\n    Parent: the following message was received from the child\n     >> ${text}\n\n`,
  );
}

/**
 * Parent step, as soon as the child has exec'd: closes the queue and removes
 * its name unless the child already did (see the module's docs); safe to repeat.
 */
export function removeDemoQueue(demo: QueueDemo): void {
  if (demo.queue === null) return;
  mqClose(demo.queue);
  demo.queue = null;
  if (!demo.released) mqUnlink(demo.name);
  demo.released = true;
}

/** The seed's last lines about the queue (with `-v`), once the command has ended. */
export function reportDemoQueueRemoved(demo: QueueDemo, report: Reporter): void {
  report.parent(`closing message queue ${demo.name}`);
  report.parent(`removing message queue ${demo.name}`);
}

/**
 * The child step of the queue demo: the child's send, then the parent's
 * receive, run in the child (see the module docs); `demo` is the queue the
 * parent opened.
 */
export function queueDemoStep(
  name: string,
  demo: () => QueueDemo,
  report: Reporter,
  ownNamespace: boolean,
): ChildStep {
  return {
    name: "mq",
    // In an IPC namespace of its own the child cannot see the queue: the demo's point.
    calls: ownNamespace
      ? [{ ...call("mq_open", name, "O_WRONLY"), returns: "-1 ENOENT (No such file or directory)" }]
      : [
        { ...call("mq_open", name, "O_WRONLY"), returns: "<the child's queue>" },
        call("mq_unlink", name),
        call("mq_send", "<the child's queue>", "<a line from stdin>", "<its length>", 0),
        {
          ...call("mq_timedreceive", "<the tool's queue>", "<buffer>", 81, null, "<now>"),
          returns: "<its length>",
        },
      ],
    why: "the seed's demo: a queue is visible only in the IPC namespace it was made in",
    run: () => {
      sendFromChild(demo(), report);
      receiveInParent(demo(), report);
    },
  };
}

/**
 * The tool's steps of the demo (`-i`): opening the queue in its own IPC
 * namespace before clone (undone, the name removed, once the child has it),
 * and the seed's last words on it once the command has ended.
 */
export function queueDemoParentSteps(
  name: string,
  newNamespace: boolean,
  reporter: Reporter,
  state: { demo?: QueueDemo },
): { open: ParentStep; report: ParentStep } {
  const open: ParentStep = {
    name: "mq_open",
    calls: [{
      ...call(
        "mq_open",
        name,
        "O_RDWR|O_CREAT|O_EXCL",
        "0600",
        "{mq_flags=0, mq_maxmsg=10, mq_msgsize=81, mq_curmsgs=0}",
      ),
      returns: "<the tool's queue>",
    }],
    why: "the seed's demo queue, made in the tool's IPC namespace",
    run: () => {
      try {
        state.demo = openDemoQueue(name, newNamespace, reporter);
      } catch (error) {
        if (!(error instanceof SyscallError) || error.errno !== Errno.EEXIST) throw error;
        const hint = name === DEMO_QUEUE ? " with --mq-name" : "";
        throw new LaunchError(
          "mq_open",
          `${error.message}; remove it or choose another name${hint}`,
          "setup",
          { cause: error },
        );
      }
    },
    // The child has opened it by then (or could not): nothing needs the name any more.
    undo: () => state.demo && removeDemoQueue(state.demo),
    undoAfterClone: true,
    undoing: {
      name: "mq_unlink",
      // without an IPC namespace of its own the child has removed the name already
      calls: [
        call("mq_close", "<the tool's queue>"),
        ...newNamespace ? [call("mq_unlink", name)] : [],
      ],
      why: "the queue goes as soon as the child has it (or could not open it), on every exit path",
    },
  };
  const report: ParentStep = {
    name: "mq_unlink",
    calls: [],
    why: "the seed's last words on the queue, once the command has ended",
    run: () => {
      if (state.demo) reportDemoQueueRemoved(state.demo, reporter);
    },
  };
  return { open, report };
}
