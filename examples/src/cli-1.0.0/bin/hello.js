#!/usr/bin/env node
const { greetLoudly } = require("..");
console.log(greetLoudly(process.argv[2] || "world"));
