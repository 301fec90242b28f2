"""The command line: parse flags, load the Config, call one function. No logic here."""

from __future__ import annotations

import functools
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from staticreg import __version__

if TYPE_CHECKING:
    from staticreg.build.start import BuildReport, Started

_PATH = click.Path(path_type=Path)
_TOKENS = click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A private registry: a file of 'name: token' lines (Bearer tokens).",
)
_HTPASSWD = click.option(
    "--htpasswd",
    "htpasswd_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A private registry: an htpasswd file of users and password hashes (Basic).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="staticreg")
def cli() -> None:
    """Turn a folder of npm tarballs into a static npm registry."""


@cli.command("build")
@click.argument("input_dir", required=False, type=_PATH)
@click.option("-o", "--output", "output_dir", type=_PATH, help="Folder to write the registry to.")
@click.option("--base-url", help="URL the registry will be served at, e.g. https://npm.example.com/.")
@click.option(
    "-c", "--config", "config_file", type=_PATH, help="Configuration file (default: ./staticreg.yml if present)."
)
@click.option(
    "--keep-going",
    is_flag=True,
    default=None,
    help="Build without the tarballs that have problems; list them in the report.",
)
@click.option("--site/--no-site", default=None, help="Write the browsable HTML site (default: on).")
@click.option(
    "--index-html/--no-index-html",
    default=None,
    help="Also write package documents as index.html, for hosts with no configuration (default: on).",
)
@click.option(
    "--precompress/--no-precompress",
    default=None,
    help="Write a gzip copy (NAME.gz) beside each package document, which nginx, Caddy and Apache send as it is (default: on).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=0), help="Parallel readers (default: one per core).")
@click.option(
    "--report", "report_file", type=_PATH, help="Where to write the build report (default: OUTPUT.report.json)."
)
@click.option(
    "--signing-key",
    type=_PATH,
    help="Sign every version with this key (staticreg keygen); also $STATICREG_SIGNING_KEY.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.pass_obj
def build_command(obj, config_file, quiet, **flags) -> None:
    """Build a static registry from the tarballs in INPUT_DIR."""
    from staticreg.build import start
    from staticreg.config import load_config

    config = load_config(config_file, **flags)
    report = start.build(
        config, _build_stages, show_progress=not quiet, process_ends=bool(obj and obj.get("process_ends"))
    )
    for problem in report.rejected:
        click.echo(f"rejected: {problem}", err=True)
    for problem in report.warnings:
        click.echo(f"warning: {problem}", err=True)
    if not quiet:
        rejected = f", {len(report.rejected)} rejected" if report.rejected else ""
        click.echo(
            f"Built {report.packages} package{'s' if report.packages != 1 else ''} "
            f"({report.versions} version{'s' if report.versions != 1 else ''}) from {report.tarballs} "
            f"tarball{'s' if report.tarballs != 1 else ''}{rejected} into {config.output_dir} "
            f"in {report.timings['total']:.2f} s. Report: {config.report_path}"
        )


def _build_stages(begun: Started) -> BuildReport:
    """pipeline.stages, imported only when they run: a no-op rebuild ends before them, having
    loaded none of the build (the model, the reader, the writers; see start)."""
    from staticreg.build.pipeline import stages

    return stages(begun)


@cli.command("serve")
@click.argument("input_dir", required=False, type=_PATH)
@click.option(
    "-c", "--config", "config_file", type=_PATH, help="Configuration file (default: ./staticreg.yml if present)."
)
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: 4873, or the next free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback is reachable from other machines.",
)
@click.option("--base-url", help="URL clients use (default: the address served).")
@click.option("--poll", is_flag=True, help="Poll for changes instead of OS events (network and container mounts).")
@_TOKENS
@_HTPASSWD
@click.option(
    "--signing-key",
    type=_PATH,
    help="Sign every version with this key (staticreg keygen); also $STATICREG_SIGNING_KEY.",
)
def serve_command(input_dir, config_file, port, host, base_url, poll, tokens_file, htpasswd_file, signing_key) -> None:
    """Build the registry from INPUT_DIR, serve it on 127.0.0.1 and rebuild when it changes."""
    from staticreg.config import check_base_url
    from staticreg.dev.serve import serve
    from staticreg.hosting import auth

    credentials = auth.load(tokens_file, htpasswd_file)
    auth.require_kinds(credentials, auth.verifiable_kinds(), "staticreg serve (on this Python)")

    # The configured base_url is where the registry is hosted in production; the
    # dev server's documents must point at the dev server instead.
    try:
        base_url = check_base_url(base_url) if base_url else ""
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from None
    serve(
        input_dir,
        config_file,
        host=host,
        port=port,
        base_url=base_url,
        poll=poll,
        credentials=credentials,
        signing_key=signing_key,
    )


@cli.command("keygen")
@click.argument("key_file", type=_PATH)
def keygen_command(key_file) -> None:
    """Write a new signing key (ECDSA P-256) to KEY_FILE, readable only by you; print its public key."""
    from staticreg.keyfiles import generate

    signer = generate(key_file)
    click.echo(f"Wrote the private key to {key_file} (mode 0600). Keep it secret: it never goes into the output.")
    click.echo(f"keyid: {signer.keyid}")
    click.echo(f"public key: {signer.key}")
    click.echo(
        f"Sign with it: signing_key: {key_file} in staticreg.yml, --signing-key {key_file}, "
        "or the file's text in $STATICREG_SIGNING_KEY."
    )


@cli.group("server-config")
def server_config_group() -> None:
    """Print a web server configuration that serves a built registry."""


_DOCUMENT_MAX_AGE = click.option(
    "--document-max-age",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seconds clients may reuse a package document without revalidating.",
)


def _served(command):
    """The options every server-config command shares: --root, --prefix, --document-max-age, --tokens, --htpasswd."""
    for option in reversed(
        (
            click.option("--root", type=_PATH, required=True, help="The built registry folder."),
            click.option(
                "--prefix", default="/", show_default=True, help="URL path the registry is served under, e.g. /npm/."
            ),
            _DOCUMENT_MAX_AGE,
            _TOKENS,
            _HTPASSWD,
        )
    ):
        command = option(command)
    return command


def _credentials(options: dict) -> dict:
    """--tokens and --htpasswd, read and checked, as the `credentials` argument."""
    from staticreg.hosting import auth

    credentials = auth.load(options.pop("tokens_file"), options.pop("htpasswd_file"))
    return {**options, "credentials": credentials}


@server_config_group.command("nginx")
@_served
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="nginx listen address.")
@click.option("--standalone", is_flag=True, help="A whole nginx.conf with its own pid, logs and temp files.")
@click.option("--state-dir", type=_PATH, help="With --standalone: folder for nginx's pid, logs and temp files.")
@click.option("--user", help="With --standalone, when run as root: the user nginx's workers run as.")
@click.option("--foreground", is_flag=True, help="With --standalone: daemon off.")
def nginx_command(foreground, **options) -> None:
    """nginx: JSON types, Accept negotiation, cache headers, %2f."""
    from staticreg.hosting import server_config

    click.echo(server_config.nginx(daemon=not foreground, **_credentials(options)), nl=False)


@server_config_group.command("apache")
@_served
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="With --standalone: Listen address.")
@click.option(
    "--standalone", is_flag=True, help="A whole httpd.conf with its own pid and logs, for a private instance."
)
@click.option("--state-dir", type=_PATH, help="With --standalone: folder for Apache's pid and logs.")
@click.option("--user", help="With --standalone, when run as root: the user Apache's workers run as.")
@click.option("--group", help="With --user: their group (default: the user's name).")
@click.option(
    "--modules-dir",
    type=_PATH,
    default=Path("/usr/lib/apache2/modules"),
    show_default=True,
    help="With --standalone: where mod_rewrite.so and the others are.",
)
def apache_command(**options) -> None:
    """Apache httpd: AllowEncodedSlashes, mod_rewrite, JSON types, cache headers."""
    from staticreg.hosting import server_config

    click.echo(server_config.apache(**_credentials(options)), nl=False)


@server_config_group.command("caddy")
@_served
@click.option(
    "--address",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Caddy site address, e.g. npm.example.com (Caddy then gets HTTPS itself).",
)
@click.option(
    "--standalone", is_flag=True, help="A whole Caddyfile: admin API and automatic HTTPS off, logs in --state-dir."
)
@click.option("--state-dir", type=_PATH, help="With --standalone: folder for Caddy's logs and storage.")
def caddy_command(**options) -> None:
    """Caddy: a site block with JSON types, Accept negotiation and cache headers."""
    from staticreg.hosting import server_config

    click.echo(server_config.caddy(**_credentials(options)), nl=False)


@server_config_group.command("cloudfront-function")
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A file of 'name: token' lines: the credentials the function lets through.",
)
def cloudfront_function_command(tokens_file) -> None:
    """CloudFront: a viewer-request (and viewer-response) function that lets only token holders in."""
    from staticreg.hosting import auth, cloudfront

    click.echo(cloudfront.function(auth.load(tokens_file, None)), nl=False)


@server_config_group.command("netlify")
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The built registry folder; _headers and _redirects are written into it.",
)
@_DOCUMENT_MAX_AGE
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A private site: Netlify's Basic-Auth with each token's NAME and TOKEN as user and password.",
)
def netlify_command(root, document_max_age, tokens_file) -> None:
    """Netlify and Cloudflare Pages: write _headers and _redirects into the built registry (after every build)."""
    from staticreg.hosting import auth
    from staticreg.hosting.host_files import CLOUDFLARE_HEADER_RULES, header_rules, write_netlify_files

    credentials = auth.load(tokens_file, None)
    if credentials:
        click.echo(
            "warning: Cloudflare Pages ignores Basic-Auth in _headers: there the registry is public "
            "(put Cloudflare Access in front); Netlify applies it on plans that have it",
            err=True,
        )
    for path in write_netlify_files(root, document_max_age, credentials):
        click.echo(f"wrote {path}")
        rules = header_rules(path.read_text()) if path.name == "_headers" else 0
        if rules > CLOUDFLARE_HEADER_RULES:
            click.echo(
                f"warning: {path} has {rules} rules; Cloudflare Pages applies only the first "
                f"{CLOUDFLARE_HEADER_RULES} (Netlify applies all), so there later packages get the host's default headers",
                err=True,
            )


@cli.command("deploy")
@click.argument("registry_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("target")
@click.option("--endpoint-url", help="URL of an S3-compatible store (default: AWS S3, as boto3 configures it).")
@click.option("--delete", is_flag=True, help="Remove objects under the prefix that are no longer in the registry.")
@_DOCUMENT_MAX_AGE
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=16, show_default=True, help="Uploads at once.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Print every object uploaded or deleted.")
def deploy_command(registry_dir, target, endpoint_url, delete, document_max_age, dry_run, jobs, quiet, verbose) -> None:
    """Upload a built registry to S3: deploy public/ s3://bucket/prefix."""
    from staticreg.hosting.deploy import deploy

    say = click.echo if verbose or dry_run else (lambda line: None)
    report = deploy(
        registry_dir,
        target,
        endpoint_url=endpoint_url,
        delete=delete,
        jobs=jobs,
        show_progress=not quiet,
        document_max_age=document_max_age,
        dry_run=dry_run,
        say=say,
    )
    click.echo(("(dry run) " if dry_run else "") + report.summary(target))


# -- changing a hosted registry: a folder or s3://bucket/prefix ---------------------------


def _hosted(command):
    """The options every command that changes a hosted registry takes; the command gets
    `run(operation, **config_flags)`, which opens the store and prints the summary."""

    @functools.wraps(command)
    def with_store(target, endpoint_url, config_file, signing_key, **arguments):
        def run(operation, **flags) -> None:
            from staticreg.config import load_config
            from staticreg.hosting.store import open_store

            # A hosted registry's own state names its settings; the flags are for one that has none yet.
            config = load_config(
                config_file,
                require_base_url=False,
                input_dir=Path("."),
                output_dir=Path(".staticreg-hosted"),
                signing_key=signing_key,
                **flags,
            )
            click.echo(operation(open_store(target, endpoint_url), config).summary())

        return command(run=run, **arguments)

    for option in reversed(
        [
            click.option(
                "--to",
                "target",
                required=True,
                help="The registry: a folder (what the web server serves) or s3://bucket/prefix.",
            ),
            click.option(
                "--endpoint-url", help="URL of an S3-compatible store (default: AWS S3, as boto3 configures it)."
            ),
            click.option(
                "-c",
                "--config",
                "config_file",
                type=_PATH,
                help="Configuration file, for template_dir and signing_key (default: ./staticreg.yml if present).",
            ),
            click.option(
                "--signing-key",
                type=_PATH,
                help="The registry's signing key, when it signs (also $STATICREG_SIGNING_KEY).",
            ),
        ]
    ):
        with_store = option(with_store)
    return with_store


def _name_and_version(spec: str) -> tuple[str, str]:
    from staticreg.errors import ConfigError
    from staticreg.npm.names import split_spec

    name, version = split_spec(spec)
    if version == "*":
        raise ConfigError(f"{spec}: give NAME@VERSION")
    return name, version


@cli.command("publish")
@click.argument("tarballs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_hosted
@click.option("--base-url", help="For a registry that does not exist yet: the URL it will be served at.")
@click.option("--title", help="For a new registry: the site's title.")
@click.option("--site/--no-site", default=None, help="For a new registry: write the browsable site (default: on).")
@click.option(
    "--index-html/--no-index-html",
    default=None,
    help="For a new folder registry: index.html copies of package documents (default: on).",
)
@click.option(
    "--precompress/--no-precompress",
    default=None,
    help="For a new folder registry: gzip copies of package documents (default: on).",
)
@click.option(
    "--tag", help="Point this dist-tag at the newest version published (latest follows the highest version anyway)."
)
def publish_command(run, tarballs, tag, **flags) -> None:
    """Add TARBALLS to the registry at --to, reading and writing only what they change."""
    from staticreg.hosting import hosted

    run(lambda store, config: hosted.publish(store, list(tarballs), config, tag=tag), **flags)


@cli.command("unpublish")
@click.argument("spec")
@_hosted
@click.option("--force", is_flag=True, help="With NAME alone: remove the whole package.")
def unpublish_command(run, spec, force) -> None:
    """Remove NAME@VERSION (or, with --force, every version of NAME) from the registry."""
    from staticreg.hosting import hosted

    name, version = _name_and_version(spec) if "@" in spec[1:] else (spec, None)
    run(lambda store, config: hosted.unpublish(store, name, version, config, force=force))


@cli.group("dist-tag")
def dist_tag_group() -> None:
    """Set and remove dist-tags in a hosted registry, as npm dist-tag does."""


@dist_tag_group.command("add")
@click.argument("spec")
@click.argument("tag")
@_hosted
def dist_tag_add_command(run, spec, tag) -> None:
    """Point TAG at NAME@VERSION."""
    from staticreg.hosting import hosted

    name, version = _name_and_version(spec)
    run(lambda store, config: hosted.dist_tag_add(store, name, version, tag, config))


@dist_tag_group.command("rm")
@click.argument("name")
@click.argument("tag")
@_hosted
def dist_tag_rm_command(run, name, tag) -> None:
    """Remove TAG from NAME."""
    from staticreg.hosting import hosted

    run(lambda store, config: hosted.dist_tag_rm(store, name, tag, config))


@cli.command("deprecate")
@click.argument("spec")
@click.argument("message")
@_hosted
def deprecate_command(run, spec, message) -> None:
    """Deprecate NAME[@RANGE] with MESSAGE; an empty MESSAGE ("") takes it back."""
    from staticreg.hosting import hosted
    from staticreg.npm.names import split_spec

    name, spec_range = split_spec(spec)
    run(lambda store, config: hosted.deprecate(store, name, spec_range, message, config))


@cli.command("check")
@click.argument("url")
@click.option(
    "-p",
    "--package",
    "names",
    multiple=True,
    help="Check this package (repeatable; default: every package in the site's search index).",
)
@click.option("--all", "all_tarballs", is_flag=True, help="Download every tarball of every package, not only a sample.")
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many packages' latest tarball to download.",
)
@click.option(
    "--token", envvar="STATICREG_TOKEN", help="A private registry's token (sent as Bearer); also $STATICREG_TOKEN."
)
@click.option(
    "--user", envvar="STATICREG_USER", help="A private registry's NAME:PASSWORD (sent as Basic); also $STATICREG_USER."
)
def check_command(url, names, all_tarballs, sample, token, user) -> None:
    """Check a live registry at URL the way the clients use it; exit 1 on problems.
    With --token or --user, also check that it refuses every kind of URL without them."""
    from staticreg.hosting.check import authorization, check

    report = check(url, list(names), all_tarballs=all_tarballs, sample=sample, credential=authorization(token, user))
    for line in report.problems:
        click.echo(f"problem: {line}")
    for line in report.notes:
        click.echo(f"note: {line}")
    signatures = (
        "" if report.signatures is None else f", {report.signatures} signature{'s' if report.signatures != 1 else ''}"
    )
    click.echo(
        f"Checked {report.packages} packages{signatures} and {report.tarballs} tarballs at {url}: "
        f"{len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}."
    )
    if report.problems:
        sys.exit(1)


@cli.command("mirror")
@click.argument("lockfiles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--upstream",
    required=True,
    help="The registry to mirror from, e.g. your company's proxy of the public npm registry.",
)
@click.option(
    "--into", "into", type=_PATH, required=True, help="The tarball folder to fill (the input of staticreg build)."
)
@click.option(
    "--token",
    envvar="STATICREG_UPSTREAM_TOKEN",
    help="Bearer token for the upstream (default: //host/:_authToken= in your .npmrc).",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1, max=256), default=16, show_default=True, help="Concurrent downloads."
)
@click.option(
    "--retries",
    type=click.IntRange(min=0, max=20),
    default=5,
    show_default=True,
    help="Retries of a request answered 429 or 5xx, or cut off, with backoff from 0.5 s.",
)
@click.option(
    "--all-platforms",
    is_flag=True,
    help="Also fetch the optionalDependencies (platform variants) the lockfiles leave out.",
)
@click.option(
    "--yarn-lock-out", type=_PATH, help="Write a copy of the yarn 1 yarn.lock with its URLs pointing at --registry-url."
)
@click.option(
    "--bun-lock-out",
    type=_PATH,
    help="Write a copy of bun.lock with the tarball URLs it pins pointing at --registry-url.",
)
@click.option("--registry-url", help="With --yarn-lock-out or --bun-lock-out: the URL the mirror will be served at.")
@click.option("--report", "report_file", type=_PATH, help="Also write the report as JSON to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
def mirror_command(
    lockfiles,
    upstream,
    into,
    token,
    jobs,
    retries,
    all_platforms,
    yarn_lock_out,
    bun_lock_out,
    registry_url,
    report_file,
    quiet,
) -> None:
    """Fetch exactly the packages LOCKFILES pin from --upstream into --into, verified against the lockfiles."""
    from staticreg.mirror.mirror import MirrorOptions, mirror, resolve_token, run_summary

    upstream = _checked(upstream, "--upstream")
    registry_url = _checked(registry_url, "--registry-url") if registry_url else None
    options = MirrorOptions(
        lockfiles=tuple(lockfiles),
        upstream=upstream,
        into=into,
        token=resolve_token(upstream, token),
        jobs=jobs,
        retries=retries,
        all_platforms=all_platforms,
        yarn_lock_out=yarn_lock_out,
        bun_lock_out=bun_lock_out,
        registry_url=registry_url,
        show_progress=not quiet,
    )
    report = mirror(options)
    ok, lines = run_summary(report, into, report_file)
    for line in lines:
        if quiet and not line.startswith(("error:", "missing")):
            continue
        click.echo(line, err=line.startswith("error:"))
    if not ok:
        sys.exit(1)


def _checked(url: str, flag: str) -> str:
    from staticreg.config import check_base_url

    try:
        return check_base_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def main() -> None:
    try:
        cli(prog_name="staticreg", obj={"process_ends": True})
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit as end:
        build = sys.modules.get("staticreg.build.start")
        if build and build.left_for_exit and isinstance(end.code, (int, type(None))):
            _end_now(end.code or 0)
        raise


def _end_now(code: int) -> NoReturn:
    """End the process without freeing what a build left (see start.left_for_exit):
    flush what was printed, wait for the build's background threads, then _exit."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
