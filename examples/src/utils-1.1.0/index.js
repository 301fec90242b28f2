exports.version = "1.1.0";
exports.shout = (text) => String(text).toUpperCase() + "!";
