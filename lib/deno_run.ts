/**
 * How Deno runs the tool's own processes (the CLI through `./invoke_ns`, and
 * the init stage): the one home of their `deno run` flags. The launcher
 * scripts, in sh, spell the same flags; tests/launcher_test.ts checks that
 * they agree.
 * @module
 */

/** Each permission the tool needs: its `deno run` flag and what Deno calls it. */
export const TOOL_PERMISSIONS: readonly { flag: string; descriptor: Deno.PermissionDescriptor }[] =
  [
    { flag: "--allow-ffi", descriptor: { name: "ffi" } },
    { flag: "--allow-read", descriptor: { name: "read" } },
    { flag: "--allow-write", descriptor: { name: "write" } },
    { flag: "--allow-env", descriptor: { name: "env" } },
  ];

/** The permission flags, in the README's order: exactly these and nothing else. */
export const PERMISSION_FLAGS: string[] = TOOL_PERMISSIONS.map((permission) => permission.flag);

/**
 * The other flags of a process started outside the project's folder: no
 * deno.json, so its `"unstable"` (lazy dynamic imports) is given by hand.
 */
export const NO_CONFIG_FLAGS: string[] = ["--no-config", "--unstable-lazy-dynamic-imports"];
