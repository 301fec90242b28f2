exports.version = "1.0.0";
exports.shout = (text) => String(text).toUpperCase() + "!";
