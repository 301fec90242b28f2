"""A CloudFront Function (runtime cloudfront-js-2.0) that makes a registry in a
private S3 bucket private behind CloudFront.

Associated with the viewer-request event it lets through only requests whose
Authorization header is one a token of the tokens file allows ("Bearer TOKEN",
or Basic with the user NAME and the password TOKEN), and answers anything else
with 401, a Basic challenge and npm's {"error": ...} body. Viewer-request
functions run before CloudFront looks in its cache, so a cached file is no way
around it. Associated with the viewer-response event too, it turns the objects'
`Cache-Control: public` into `private`, so that no shared cache past CloudFront
keeps a private file.

The function holds the SHA-256 of each allowed header value, not the tokens:
whoever can read the function's code learns no token. Rotating a token is
writing the function again and publishing it.
"""

from __future__ import annotations

import hashlib
import json

from staticreg.hosting import auth
from staticreg.npm import headers

_TEMPLATE = """\
// staticreg: a CloudFront Function (runtime cloudfront-js-2.0) for a private registry.
// Associate it with the viewer-request event (the credentials check) and the
// viewer-response event (Cache-Control: private). Written by
// `staticreg server-config cloudfront-function --tokens FILE`: rotate a token by
// editing that file, writing the function again and publishing it.
var crypto = require('crypto');

// SHA-256 of every Authorization header value a token allows, and its name.
var ALLOWED = %(allowed)s;

function unauthorized() {
    return {
        statusCode: 401,
        statusDescription: 'Unauthorized',
        headers: {
            'www-authenticate': {value: %(challenge)s},
            'content-type': {value: 'application/json'},
            'cache-control': {value: %(no_store)s}
        },
        body: {encoding: 'text', data: %(body)s}
    };
}

function handler(event) {
    if (event.context.eventType === 'viewer-response') {
        var response = event.response;
        var cache = response.headers['cache-control'];
        if (cache && cache.value) {
            cache.value = cache.value.replace(/\\bpublic\\b/, 'private');
        }
        return response;
    }
    var request = event.request;
    var given = request.headers.authorization;
    if (given && typeof given.value === 'string') {
        var digest = crypto.createHash('sha256').update(given.value).digest('hex');
        if (Object.prototype.hasOwnProperty.call(ALLOWED, digest)) {
            return request;
        }
    }
    return unauthorized();
}
"""


def function(credentials: auth.Credentials) -> str:
    """The function's JavaScript for the tokens of `credentials` (htpasswd users need
    bcrypt or MD5 crypt, which CloudFront Functions cannot compute)."""
    allowed = {
        hashlib.sha256(value.encode()).hexdigest(): token.name
        for token in credentials.tokens
        for value in (token.bearer, token.basic)
    }
    return _TEMPLATE % {
        "allowed": json.dumps(allowed, indent=4, sort_keys=True),
        "challenge": json.dumps(f'Basic realm="{auth.REALM}"'),
        "no_store": json.dumps(headers.UNAUTHORIZED_CACHE),
        "body": json.dumps(auth.UNAUTHORIZED_BODY + "\n"),
    }
