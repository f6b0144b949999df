/**
 * Architecture-specific layout the clone engine depends on: glibc's
 * `ucontext_t` on x86-64. Other architectures need their own offsets; until
 * they have them, {@link checkPlatform} refuses them in one clear line.
 * @module
 */

import { kernelRelease } from "./libc.ts";

/** `sizeof(ucontext_t)` on x86-64 glibc is 968; rounded up. */
export const UCONTEXT_SIZE = 1024;
/** Offset of `uc_link`. */
export const UC_LINK = 8;
/** Offset of `uc_stack.ss_sp`. */
export const UC_STACK_SP = 16;
/** Offset of `uc_stack.ss_size`. */
export const UC_STACK_SIZE = 32;
/** Offset of `uc_mcontext.gregs`. */
export const UC_GREGS = 40;
/** Index of the stack pointer in `gregs`. */
export const REG_RSP = 15;
/** Index of the first integer argument register (`rdi`) in `gregs`. */
export const REG_RDI = 8;
/** Index of the third integer argument register (`rdx`) in `gregs`. */
export const REG_RDX = 12;
/** Offset of `uc_sigmask`. */
export const UC_SIGMASK = 296;

/** Why this machine cannot run the tool, or null when it can. */
// Compiled with its module, so Deno's code cache keeps it: docs/performance.md
export const unsupportedPlatform = (function unsupportedPlatform(): string | null {
  if (Deno.build.os !== "linux") return `Linux is required (this is ${Deno.build.os})`;
  if (Deno.build.arch !== "x86_64") {
    return `only x86-64 is supported for now (this is ${Deno.build.arch}): ` +
      "the clone engine needs this architecture's ucontext layout";
  }
  if (Deno.build.env !== "gnu") return "glibc is required (the clone engine uses its ucontext)";
  const release = kernelRelease();
  const [major, minor] = release.split(/[.-]/).map(Number);
  if (major < 5 || (major === 5 && minor < 9)) {
    return `Linux 5.9 or later is required (close_range); this kernel is ${release}`;
  }
  return null;
}).bind(null);
