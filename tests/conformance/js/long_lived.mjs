// A long-running Node program: one STS client kept for the whole run (as a server or a CLI tool's session would),
// next to clients and providers created afresh for each call (so that they fetch from the endpoint every time).
// Reads one line per round from stdin and answers one JSON line per round; stops at end of input.
//   node long_lived.mjs --endpoint http://127.0.0.1:PORT
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { makeClient, observed, whoami } from "./sdk.mjs";

const { values } = parseArgs({ options: { endpoint: { type: "string" } } });
const kept = makeClient(values.endpoint, "default");

for await (const _line of createInterface({ input: process.stdin })) {
  const round = {
    kept: await whoami(kept),
    freshDefault: await whoami(makeClient(values.endpoint, "default")),
    freshHttp: await whoami(makeClient(values.endpoint, "http")),
  };
  process.stdout.write(JSON.stringify({ ...round, ...observed() }) + "\n");
}
