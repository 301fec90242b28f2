"""An unchanged package's site page must still gain a link when its dependency arrives."""

from staticreg.build.pipeline import build
from tests.helpers import make_tarball


def test_dependency_added_later_is_linked_on_an_unchanged_package_page(tarballs, make_config):
    make_tarball(tarballs, {"name": "app", "version": "1.0.0", "dependencies": {"lib": "^1.0.0"}})
    config = make_config(tarballs)
    build(config, show_progress=False)
    page = config.output_dir / "-/web/package/app/index.html"
    assert '-/web/package/lib/"' not in page.read_text()
    make_tarball(tarballs, {"name": "lib", "version": "1.0.0"})
    build(config, show_progress=False)
    assert '-/web/package/lib/"' in page.read_text()
