// Runs the provider's official JavaScript SDK (npm package `wavespeed`), unmodified, through a list of calls
// and writes what each returned or threw as JSON, for tests/integration/test_sandbox_js_sdk.py to check.
//
//   node wavespeed_js_driver.js PLAN.json RESULT.json
//
// PLAN: {"sdk": "<the installed package's directory>", "apiKey": "...", "client": {<Client options>},
//        "calls": [{"method": "run" | "runNoThrow" | "upload", "args": [...]}, ...]}
// RESULT: {"version": "<the SDK's own version>", "results": [{"ok": true, "value": ...} |
//          {"ok": false, "error": {"name", "message", "taskId", "resultUrl"}}, ...]}
// The SDK prints its retries on stdout, so the results go to a file of their own.
'use strict';

const fs = require('fs');

function describeError(error) {
  return {
    name: error.name,
    message: error.message,
    taskId: error.taskId === undefined ? null : error.taskId,
    resultUrl: error.resultUrl === undefined ? null : error.resultUrl,
  };
}

// runNoThrow() hands back its exception inside `detail`; Error objects do not survive JSON.stringify.
function plain(value) {
  return JSON.parse(JSON.stringify(value, (_key, item) => (item instanceof Error ? describeError(item) : item)));
}

async function main() {
  const [planPath, resultPath] = process.argv.slice(2);
  const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'));
  const wavespeed = require(plan.sdk);
  const client = new wavespeed.Client(plan.apiKey, plan.client);
  const results = [];
  for (const call of plan.calls) {
    try {
      results.push({ ok: true, value: plain(await client[call.method](...call.args)) });
    } catch (error) {
      results.push({ ok: false, error: describeError(error) });
    }
  }
  fs.writeFileSync(resultPath, JSON.stringify({ version: wavespeed.version, results }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
