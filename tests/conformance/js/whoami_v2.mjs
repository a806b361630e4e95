// One sts:GetCallerIdentity with the AWS SDK for JavaScript v2 and its default credential chain (which asks the
// container endpoint through AWS.ECSCredentials); prints one JSON line, exits 1 on failure.
//   node whoami_v2.mjs --endpoint http://127.0.0.1:PORT
import { parseArgs } from "node:util";

import { observed } from "./guard.mjs";

process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = "1"; // v2's end-of-support note on every require
const { default: AWS } = await import("aws-sdk");

const { values } = parseArgs({ options: { endpoint: { type: "string" } } });
const sts = new AWS.STS({ endpoint: values.endpoint });
const started = Date.now();
let result;
try {
  const identity = await sts.getCallerIdentity().promise();
  result = { ok: true, arn: identity.Arn, accessKeyId: sts.config.credentials.accessKeyId };
} catch (error) {
  result = { ok: false, name: error?.name, code: error?.code ?? null, message: String(error?.message ?? error),
             statusCode: error?.statusCode ?? null };
}
process.stdout.write(JSON.stringify({ ...result, elapsedMs: Date.now() - started, ...observed() }) + "\n");
process.exitCode = result.ok ? 0 : 1;
