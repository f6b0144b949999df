/**
 * The pure codecs behind the CLI's messages: Deno's file system errors in
 * the tool's words (jail/fserror.ts) and the typo check (cli/suggest.ts).
 */
import assert from "node:assert/strict";
import { describeFileError } from "../jail/fserror.ts";
import { oneEditAway, typoOf } from "../cli/suggest.ts";

function denoError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("describeFileError: what, which path, the errno, what to do", () => {
  const cases: [Error, string | undefined, string][] = [
    [
      denoError(
        "Permission denied (os error 13): symlink 'usr/sbin' -> '/var/local/jail/sbin'",
        "EACCES",
      ),
      undefined,
      "cannot create /var/local/jail/sbin: permission denied (EACCES); run with sudo or choose a directory you own",
    ],
    [
      denoError("Permission denied (os error 13): mkdir '/var/local/jail'", "EACCES"),
      undefined,
      "cannot create /var/local/jail: permission denied (EACCES); run with sudo or choose a directory you own",
    ],
    [
      denoError("Permission denied (os error 13): open '/root/secret'", "EACCES"),
      undefined,
      "cannot open /root/secret: permission denied (EACCES); run with sudo",
    ],
    [
      denoError("No space left on device (os error 28): open '/j/usr/bin/.ls.1234567~'", "ENOSPC"),
      undefined,
      "cannot create /j/usr/bin/ls: no space left on device (ENOSPC); free some space or choose another file system",
    ],
    [
      denoError("No space left on device (os error 28)", "ENOSPC"),
      "/usr/bin/ls",
      "/usr/bin/ls: no space left on device (ENOSPC); free some space or choose another file system",
    ],
    [
      denoError("Read-only file system (os error 30): rename '/j/.a.1~' -> '/j/a'", "EROFS"),
      undefined,
      "cannot create /j/a: read-only file system (EROFS); choose a directory on a writable file system",
    ],
    [
      denoError("Not a directory (os error 20): stat '/etc/passwd/x'", "ENOTDIR"),
      undefined,
      "cannot look up /etc/passwd/x: not a directory (ENOTDIR)",
    ],
  ];
  for (const [error, subject, expected] of cases) {
    const said = describeFileError(error, subject);
    assert.equal(said, expected);
    assert.doesNotMatch(said!, /os error/);
  }
  assert.equal(describeFileError(new Error("not a file system error")), null);
  assert.equal(describeFileError("a string"), null);
});

Deno.test("describeFileError on a real Deno error", () => {
  try {
    Deno.mkdirSync("/proc/invoke_ns_no_such_dir/x");
    assert.fail("mkdir in /proc succeeded");
  } catch (error) {
    assert.equal(
      describeFileError(error),
      "cannot create /proc/invoke_ns_no_such_dir/x: no such file or directory (ENOENT)",
    );
  }
});

Deno.test("oneEditAway: one letter inserted, deleted, changed or moved", () => {
  const cases: [string, string, boolean][] = [
    ["tuor", "tour", true], // two neighbours swapped
    ["turo", "tour", true], // one letter moved
    ["enterr", "enter", true], // inserted
    ["jial", "jail", true],
    ["tor", "tour", true], // deleted
    ["tout", "tour", true], // changed
    ["tour", "tour", false],
    ["top", "tour", false],
    ["true", "tour", false],
    ["abcd", "dcba", false],
    ["enterxx", "enter", false],
  ];
  for (const [typed, word, expected] of cases) {
    assert.equal(oneEditAway(typed, word), expected, `${typed} / ${word}`);
  }
  assert.equal(typoOf("nss", ["tour", "ns", "enter"]), "ns");
  assert.equal(typoOf("hostname", ["tour", "ns", "enter"]), undefined);
});
