/**
 * The wording of `--explain`, shared by the run form, `enter` and `oci`:
 * the plan's lines under a heading, or the plan as one JSON document.
 * @module
 */

import { type Explanation, explanationLines } from "../lib/explain.ts";

/** `explanation` as `--explain` prints it (`json`: as one JSON line). */
export function explanationText(explanation: Explanation, json: boolean): string {
  if (json) return `${JSON.stringify({ event: "plan", ...explanation })}\n`;
  const heading = `${"who".padEnd(10)} ${"step".padEnd(13)} call  # why (nothing was created)`;
  return `${[heading, ...explanationLines(explanation)].join("\n")}\n`;
}
