"""plan.plan_packages: what a build does with each package, from what the last two builds left."""

from staticreg.build.incremental import Built
from staticreg.build.plan import KEEP_SPARE, LINK, WRITE, plan_packages


def test_each_package_is_kept_linked_or_written_by_its_fingerprint():
    previous = {
        "same": Built("f1", "a\nb"),
        "twice": Built("f2", "c"),
        "changed": Built("old", "d"),
        "no-files": Built("f4"),
    }
    spare = {"twice": Built("f2", "c"), "same": Built("older", "a")}
    fingerprints = {"same": "f1", "twice": "f2", "changed": "new", "no-files": "f4", "new": "f5"}
    assert plan_packages(fingerprints, previous, spare) == {
        "same": LINK,  # unchanged since the last build; the spare holds an older one
        "twice": KEEP_SPARE,  # unchanged in both: its files stay where they are in the spare
        "changed": WRITE,
        "no-files": WRITE,  # the last build left no files for it to link
        "new": WRITE,
    }


def test_without_a_usable_spare_nothing_is_kept_there():
    previous = {"twice": Built("f2", "c")}
    assert plan_packages({"twice": "f2"}, previous, None) == {"twice": LINK}
    assert plan_packages({"twice": "f2"}, {}, {"twice": Built("f2", "c")}) == {"twice": WRITE}
