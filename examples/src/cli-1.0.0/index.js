const greet = require("@demo/greet");
const { shout } = require("demo-utils");
exports.greetLoudly = (name) => shout(greet(name));
