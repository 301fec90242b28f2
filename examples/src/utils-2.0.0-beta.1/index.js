exports.version = "2.0.0-beta.1";
exports.shout = (text) => String(text).toUpperCase() + "!";
