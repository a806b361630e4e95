// One sts:GetCallerIdentity with the chosen credential provider; prints one JSON line, exits 1 on failure.
//   node whoami.mjs --endpoint http://127.0.0.1:PORT [--provider default|http|container] [--max-retries N]
import { parseArgs } from "node:util";

import { makeClient, observed, whoami } from "./sdk.mjs";

const { values } = parseArgs({
  options: {
    endpoint: { type: "string" },
    provider: { type: "string", default: "default" },
    "max-retries": { type: "string" },
  },
});
const options = values["max-retries"] === undefined ? {} : { maxRetries: Number(values["max-retries"]) };
const result = await whoami(makeClient(values.endpoint, values.provider, options));
process.stdout.write(JSON.stringify({ ...result, ...observed() }) + "\n");
process.exitCode = result.ok ? 0 : 1;
