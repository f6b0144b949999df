// The start-up floor: an empty Deno program.
