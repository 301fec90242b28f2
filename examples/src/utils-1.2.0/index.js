exports.version = "1.2.0";
exports.shout = (text) => String(text).toUpperCase() + "!";
