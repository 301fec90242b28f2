"""Draw the benchmark's figures as one PNG, for the README's Speed section.

    .venv/bin/python bench/plot.py bench/runs/results-*.json -o bench/speed.png

Left: cold build, no-op rebuild, the read floor and the read and write floors together
(where measured) against the number of tarballs,
on log-log axes (every size any of the given result files measured; the newest
file wins for a size measured twice). Right: the times against Verdaccio that the
peer round measured: ingest (Verdaccio's publish loop against the cold build) and
cold installs (pnpm, npm), with pnpm's own offline install from a full store, the
floor of any registry. Needs matplotlib (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(files: list[Path]) -> tuple[dict[int, dict], dict | None]:
    builds: dict[int, dict] = {}
    peer = None
    for path in sorted(files, key=lambda p: p.name):  # results-<UTC stamp>.json: oldest first
        data = json.loads(path.read_text())
        for count, build in data["builds"].items():
            builds[int(count)] = build
        peer = data.get("peer") or peer
    return builds, peer


def draw(builds: dict[int, dict], peer: dict | None, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if peer else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.6), squeeze=False)
    ax = axes[0][0]
    sizes = sorted(builds)
    tarballs = [builds[n]["tarballs"] for n in sizes]
    ax.plot(tarballs, [builds[n]["cold_seconds"] for n in sizes], "o-", label="cold build")
    ax.plot(tarballs, [builds[n]["floor"] for n in sizes], "s--", label="read floor (sha1 + sha512 + inflate)")
    ax.plot(tarballs, [2 * builds[n]["floor"] for n in sizes], ":", color="grey", label="2x the read floor")
    with_write = [n for n in sizes if "write_floor" in builds[n]]
    if with_write:  # results from before the write floor was measured have none
        ax.plot(
            [builds[n]["tarballs"] for n in with_write],
            [builds[n]["floor"] + builds[n]["write_floor"] for n in with_write],
            "d--",
            label="read floor + write floor (the output's files)",
        )
    with_noop = [n for n in sizes if "noop_seconds" in builds[n]]
    if with_noop:
        ax.plot(
            [builds[n]["tarballs"] for n in with_noop],
            [builds[n]["noop_seconds"] for n in with_noop],
            "^-",
            label="no-op rebuild",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tarballs")
    ax.set_ylabel("seconds (median)")
    ax.set_title("staticreg build")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)

    if peer:
        ax = axes[0][1]
        rows = [("ingest", peer["verdaccio_publish_seconds"], peer["build_seconds"], None)]
        for client, result in peer["as_built"]["installs"].items():
            offline = None
            if "floor" in result:
                offline = statistics.median(f["offline_warm"] for f in result["floor"])
            rows.append((f"{client} install", result["median"]["verdaccio"], result["median"]["staticreg"], offline))
        labels = [r[0] for r in rows]
        y = range(len(rows))
        ax.barh([i + 0.2 for i in y], [r[1] for r in rows], height=0.4, label="Verdaccio")
        ax.barh([i - 0.2 for i in y], [r[2] for r in rows], height=0.4, label="staticreg (+ nginx)")
        for i, row in enumerate(rows):
            if row[3] is not None:
                ax.plot([row[3], row[3]], [i - 0.45, i + 0.45], "k--", label="pnpm --offline, full store")
        ax.set_yticks(list(y), labels)
        ax.set_xscale("log")
        ax.set_xlabel("seconds (median, log scale)")
        ax.set_title(f"against Verdaccio, {peer['tarballs']:,} tarballs")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="results-*.json files written by bench/run.py")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "speed.png")
    args = parser.parse_args()
    builds, peer = load(args.results)
    draw(builds, peer, args.output)
    print(args.output)


if __name__ == "__main__":
    main()
