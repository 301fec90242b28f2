// staticreg's site: search over a static index, "/" to search, copy buttons.
// Package text is only ever put into the page with textContent, never as HTML.
(function () {
  "use strict";

  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var indexPath = body.getAttribute("data-search-index");
  var input = document.getElementById("q");
  var results = document.getElementById("search-results");
  var MAX_SHOWN = 100;

  function isTyping(element) {
    var tag = element && element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (element && element.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && input && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target)) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });

  // Copy buttons on the install commands and .npmrc lines.
  if (navigator.clipboard) {
    document.querySelectorAll(".copy-block").forEach(function (block) {
      var code = block.querySelector("code");
      if (!code) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy: " + code.textContent);
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(code.textContent).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        }, function () {
          button.textContent = "Select and copy";
        });
      });
      block.appendChild(button);
    });
  }

  // Pages without a results area send the search form to the home page (?q=).
  if (!input || !results || !indexPath) return;

  var status = document.getElementById("search-status");
  var list = document.getElementById("search-list");
  var listing = document.getElementById("listing");
  var loading = null;

  function load() {
    if (!loading) {
      // A page opened as http://user:password@host/ (a private registry) resolves
      // relative URLs with the credentials in them, which fetch refuses; the
      // browser sends its remembered credentials to the same origin anyway.
      var url = new URL(root + indexPath, location.href);
      url.username = url.password = "";
      loading = fetch(url.href, { credentials: "same-origin", cache: "no-cache" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          return data.packages.map(function (row) {
            var name = String(row[0]);
            var keywords = Array.isArray(row[3]) ? row[3].map(String) : [];
            return {
              name: name,
              version: String(row[1]),
              description: String(row[2] || ""),
              keywords: keywords,
              published: String(row[4] || ""),
              lowerName: name.toLowerCase(),
              bareName: name.charAt(0) === "@" ? name.slice(name.indexOf("/") + 1).toLowerCase() : name.toLowerCase(),
              lowerKeywords: keywords.map(function (k) { return k.toLowerCase(); }),
              text: (name + " " + (row[2] || "") + " " + keywords.join(" ")).toLowerCase()
            };
          });
        });
      loading.catch(function () { loading = null; });
    }
    return loading;
  }

  function score(entry, query, terms) {
    for (var i = 0; i < terms.length; i++) {
      if (entry.text.indexOf(terms[i]) === -1) return -1;
    }
    if (entry.lowerName === query || entry.bareName === query) return 0;
    if (entry.lowerName.indexOf(query) === 0 || entry.bareName.indexOf(query) === 0) return 1;
    if (entry.lowerName.indexOf(query) !== -1) return 2;
    if (entry.lowerKeywords.indexOf(query) !== -1) return 3;
    return 4;
  }

  function search(entries, query) {
    var terms = query.split(/\s+/).filter(Boolean);
    var found = [];
    for (var i = 0; i < entries.length; i++) {
      var s = score(entries[i], query, terms);
      if (s >= 0) found.push([s, entries[i]]);
    }
    found.sort(function (a, b) {
      return a[0] - b[0] || (a[1].lowerName < b[1].lowerName ? -1 : a[1].lowerName > b[1].lowerName ? 1 : 0);
    });
    return found.map(function (pair) { return pair[1]; });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function item(entry) {
    var li = element("li", "package-item");
    var line = element("div", "package-line");
    var link = element("a", "package-name", entry.name);
    link.href = root + "-/web/package/" + encodeURI(entry.name) + "/"; // layout.site_package_page
    line.appendChild(link);
    line.appendChild(document.createTextNode(" "));
    line.appendChild(element("span", "version-badge", entry.version));
    li.appendChild(line);
    if (entry.description) li.appendChild(element("p", "package-description", entry.description));
    var meta = element("p", "package-meta");
    if (entry.published) meta.appendChild(document.createTextNode("Published " + entry.published));
    entry.keywords.slice(0, 8).forEach(function (keyword) {
      meta.appendChild(element("span", "keyword", "#" + keyword));
    });
    li.appendChild(meta);
    return li;
  }

  function show(query) {
    var clean = query.trim().toLowerCase();
    if (!clean) {
      results.hidden = true;
      if (listing) listing.hidden = false;
      list.textContent = "";
      return;
    }
    results.hidden = false;
    if (listing) listing.hidden = true;
    status.textContent = "Searching…";
    load().then(function (entries) {
      if (input.value.trim().toLowerCase() !== clean) return; // a newer search is on its way
      var found = search(entries, clean);
      var fragment = document.createDocumentFragment();
      found.slice(0, MAX_SHOWN).forEach(function (entry) { fragment.appendChild(item(entry)); });
      list.textContent = "";
      list.appendChild(fragment);
      var what = found.length === 0 ? "No package matches" :
        found.length === 1 ? "1 package matches" : found.length + " packages match";
      status.textContent = what + " \u201c" + query.trim() + "\u201d" +
        (found.length > MAX_SHOWN ? "; the first " + MAX_SHOWN + " are shown, type more to narrow it down." : ".");
    }, function () {
      status.textContent = "Search is not available: the search index could not be loaded.";
    });
  }

  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var query = input.value;
      var url = query.trim() ? "?q=" + encodeURIComponent(query.trim()) : location.pathname;
      if (history.replaceState && !body.hasAttribute("data-not-found")) history.replaceState(null, "", url);
      show(query);
    }, 60);
  });
  input.addEventListener("focus", function () { load(); }, { once: true });
  input.form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && input.value) {
      input.value = "";
      show("");
    }
  });

  // The 404 page: name what was asked for, and search for it.
  var message = document.getElementById("not-found-message");
  if (message) {
    body.setAttribute("data-not-found", "");
    var path = location.pathname;
    try { path = decodeURIComponent(path); } catch (error) { /* keep it encoded */ }
    if (root.charAt(0) === "/" && path.indexOf(root) === 0) path = path.slice(root.length);
    path = path.replace(/^\/+/, "").replace(/^-\/web\/package\//, ""); // a package page or a document
    var parts = path.split("/");
    var name = parts[0].charAt(0) === "@" && parts[1] ? parts[0] + "/" + parts[1] : parts[0];
    if (name && name !== "-") {
      message.textContent = "There is no package \u201c" + name + "\u201d in this registry.";
      input.value = name;
      show(name);
    }
    return;
  }

  var initial = new URLSearchParams(location.search).get("q");
  if (initial) {
    input.value = initial;
    show(initial);
  }
})();
