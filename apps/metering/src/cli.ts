#!/usr/bin/env node
/** Entry of the `metering` ops CLI (package.json "bin"). The commands live in ./cli/. */
import 'reflect-metadata';
import { runCli } from './cli/program';

// Files the CLI may create (a new SQLite database) are readable by the owner only.
process.umask(0o077);
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`metering: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
