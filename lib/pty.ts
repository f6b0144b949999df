/**
 * `--pty`: the command gets a pseudo-terminal of its own, relayed to the
 * caller's, as `docker run -t` and `systemd-run --pty` do. The tool opens
 * the pair before clone, copies the caller's window size onto it and puts
 * the caller's terminal in raw mode (so ^C, ^Z and line editing are the
 * command's, through its own terminal's line discipline); the child makes
 * the slave the controlling terminal of a new session and its stdin,
 * stdout and stderr; while the command runs, the tool relays bytes both
 * ways with poll on another thread (the event loop stays free) and passes
 * SIGWINCH on as TIOCSWINSZ. The caller's terminal mode is restored on
 * every exit path (the relay's end, a failed setup, the clean-up).
 *
 * The command cannot reach the caller's terminal at all: TIOCSTI on its
 * own terminal only types into its own input.
 * @module
 */

import { close, F_GETFL, F_SETFL, fcntl, O_NONBLOCK } from "../ffi/libc.ts";
import {
  becomeTerminalSession,
  makeRaw,
  openPty,
  POLL,
  pollAsync,
  type PtyPair,
  readSome,
  restoreMode,
  setWindowSize,
  type TerminalMode,
  windowSize,
  writeSome,
} from "../ffi/pty.ts";

/** The most written to the caller's output at once: what a pipe with room takes whole. */
const PAGE = 4096;
import { call, type ChildStep, type ParentStep } from "./step.ts";

/** The steps of a pty and its relay. */
export interface PtySteps {
  /** Before clone: opens the pair, copies the window size, makes the caller's terminal raw. */
  parent: ParentStep;
  /** In the child: setsid, TIOCSCTTY on the slave, dup2 onto 0-2. */
  child: ChildStep;
  /** In the tool while the command runs: relays until the command's side is gone. */
  relay: () => Promise<void>;
  /** Tells the relay the command has exited: it drains what is left, then ends. */
  finish: () => void;
  /** Puts the caller's terminal back and closes the master (idempotent, never throws). */
  restore: () => void;
}

/** Why a pty cannot be given, or null. */
export function ptyProblem(stage: "child" | "init", command: string | undefined): string | null {
  if (command === undefined) return "--pty needs a command";
  if (stage === "init") {
    return "--pty cannot be combined with hooks, ID ranges (--map-users, --map-auto) or a start FIFO";
  }
  return null;
}

/** The first of 0-2 that is a terminal, for the window size. */
function callerTerminal(): number | null {
  for (const fd of [0, 1, 2]) if (windowSize(fd)) return fd;
  return null;
}

/** The steps of one pty. */
export function ptySteps(): PtySteps {
  let pair: PtyPair | undefined;
  let saved: TerminalMode | null = null;
  let done = false;
  let onWinch: (() => void) | undefined;
  const restore = () => {
    if (onWinch) {
      try {
        Deno.removeSignalListener("SIGWINCH", onWinch);
      } catch {
        // not registered
      }
      onWinch = undefined;
    }
    if (saved) {
      try {
        restoreMode(0, saved);
      } catch {
        // the terminal is gone
      }
      saved = null;
    }
    if (pair && pair.master >= 0) {
      try {
        close(pair.master);
      } catch {
        // already closed
      }
      pair.master = -1;
    }
  };
  const parent: ParentStep = {
    name: "pty",
    calls: [
      call("posix_openpt", "O_RDWR|O_NOCTTY|O_CLOEXEC"),
      call("grantpt", "<master>"),
      call("unlockpt", "<master>"),
      call("open", "<ptsname>", "O_RDWR|O_NOCTTY|O_CLOEXEC"),
      call("ioctl", "<master>", "TIOCSWINSZ", "<caller's TIOCGWINSZ>"),
      call("tcsetattr", 0, "TCSAFLUSH", "<cfmakeraw>"),
    ],
    why: "a terminal of the command's own, sized as the caller's; the caller's goes raw",
    run: () => {
      pair = openPty();
      const terminal = callerTerminal();
      const size = terminal === null ? null : windowSize(terminal);
      if (size) setWindowSize(pair.master, size);
      saved = makeRaw(0);
    },
    // the tool's copy of the slave goes once the child has its own: the relay
    // then sees EIO when the command's side is gone
    undo: () => {
      if (pair && pair.slave >= 0) {
        close(pair.slave);
        pair.slave = -1;
      }
    },
    undoAfterClone: true,
  };
  const child: ChildStep = {
    name: "pty",
    calls: [
      call("setsid"),
      call("ioctl", "<slave>", "TIOCSCTTY", 0),
      call("dup2", "<slave>", "0-2"),
    ],
    why: "the pty becomes the controlling terminal of a new session, and stdin, stdout, stderr",
    run: () => becomeTerminalSession(pair!.slave),
  };
  const relay = async () => {
    if (!pair) return;
    const master = pair.master;
    const terminal = callerTerminal();
    if (terminal !== null) {
      onWinch = () => {
        const size = windowSize(terminal);
        if (size && pair && pair.master >= 0) {
          try {
            setWindowSize(pair.master, size);
          } catch {
            // the pty is gone
          }
        }
      };
      // After clone, so after signalsIgnoredByCaller()'s first read: any listener makes Deno
      // catch HUP, INT and TERM too, and a caller's SIG_IGN read later would be lost.
      Deno.addSignalListener("SIGWINCH", onWinch);
    }
    try {
      // Nothing here blocks: the master is non-blocking and fd 1 is written only
      // when poll says it has room, at most a page at a time (a pipe then takes it
      // whole). What could not be written waits, and meanwhile nothing more is
      // read from that side, so a reader that stops slows the writer down
      // instead of freezing the tool (its signals and time limits go on).
      fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
      const buffer = new Uint8Array(16384);
      let stdinOpen = true;
      let toOut: Uint8Array<ArrayBuffer> | null = null;
      let toMaster: Uint8Array<ArrayBuffer> | null = null;
      for (;;) {
        const entries: { fd: number; events: number }[] = [
          { fd: master, events: (toOut ? 0 : POLL.IN) | (toMaster ? POLL.OUT : 0) },
        ];
        const stdinAt = stdinOpen && !toMaster ? entries.push({ fd: 0, events: POLL.IN }) - 1 : -1;
        const outAt = toOut ? entries.push({ fd: 1, events: POLL.OUT }) - 1 : -1;
        const events = await pollAsync(entries, done ? 0 : 200);
        let moved = false;
        if (events[0] & POLL.NVAL) break;
        if (!toOut && events[0] & (POLL.IN | POLL.HUP | POLL.ERR)) {
          const n = readSome(master, buffer);
          if (n === -1 || n === 0) break; // the command's side is gone
          if (n > 0) {
            toOut = buffer.slice(0, n);
            moved = true;
          }
        }
        if (toMaster && events[0] & POLL.OUT) {
          const n = writeSome(master, toMaster);
          if (n === -1) break;
          if (n > 0) {
            toMaster = n === toMaster.length ? null : toMaster.slice(n);
            moved = true;
          }
        }
        if (stdinAt >= 0 && events[stdinAt]) {
          const n = readSome(0, buffer);
          if (n === 0 || n === -1 || (events[stdinAt] & POLL.NVAL)) {
            stdinOpen = false;
            toMaster = new Uint8Array([4]); // end of input: ^D, as a terminal's user would
          } else if (n > 0) {
            toMaster = buffer.slice(0, n);
            moved = true;
          }
        }
        if (outAt >= 0 && toOut && events[outAt]) {
          if (events[outAt] & (POLL.ERR | POLL.NVAL)) {
            toOut = null; // nobody reads our output any more: drop it
          } else {
            const n = writeSome(1, toOut.subarray(0, PAGE));
            if (n === -1) toOut = null;
            else if (n > 0) {
              toOut = n === toOut.length ? null : toOut.slice(n);
              moved = true;
            }
          }
        }
        if (done && !moved) break;
      }
    } finally {
      restore();
    }
  };
  return { parent, child, relay, finish: () => (done = true), restore };
}
