"""Appends whose cost follows the rows they add: the same new rows appended to tables of several sizes.

For each base size, the taxi stream is written as :data:`BASE_FILES` Parquet files (the same number
of files at every size, so that only the table grows) plus one drop of ``drop_rows`` newer trips.
The base is accelerated once (a full refresh, untimed). Each repetition starts from a copy of that
file, brought to the state a running deployment is in by an untimed refresh with no new rows (it
reads the copy whole and records it, as any previous refresh would have), then times:

* ``append``: the drop appended (the source directory now holds the base files and the drop);
* ``noop``: the same append run again, which finds no new rows.

Sizes are interleaved within each repetition (order alternated); medians are reported.
``append_100k_50m_vs_1m`` is the largest size's append over the smallest's; ``append_noop_s`` is the
no-op append at the largest size.
"""

from __future__ import annotations

import datetime as dt
import gc
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.refresh import TABLE, TIME_COLUMN, _fresh, dataset, hook

#: Files of every base, whatever its size.
BASE_FILES = 20


def source_dirs(work: Path, base_rows: int, drop_rows: int) -> tuple[Path, Path]:
    """(base, plus): ``base_rows`` trips in :data:`BASE_FILES` files; the same files and the drop."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from airflow_provider_accel.demo import taxi

    root = work / f"append_scale_{base_rows}_{drop_rows}"
    base, plus, files = root / "base", root / "plus", root / "files"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        row_group = min(1_000_000, max(base_rows // BASE_FILES, 1_000))
        paths = taxi.write_parquet_files(files, base_rows, files=BASE_FILES, row_group_size=row_group)
        last = pq.read_table(paths[-1], columns=[TIME_COLUMN]).column(0)
        newest = pc.max(last).as_py()
        drop = files / "drop.parquet"
        taxi.write_parquet(drop, drop_rows, seed=7, start=newest + dt.timedelta(seconds=1))
        for view, chosen in ((base, paths), (plus, [*paths, drop])):
            view.mkdir(parents=True)
            for path in chosen:
                (view / path.name).symlink_to(path)
        (root / ".complete").write_text("ok\n")
    return base, plus


def run(
    work: Path, sizes: tuple[int, ...], drop_rows: int, reps: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    from airflow_provider_accel.spicepod.model import RefreshMode

    seeds: dict[int, tuple[Path, Path, Path]] = {}
    for size in sizes:
        base, plus = source_dirs(work, size, drop_rows)
        seed = _fresh(work / f"append_scale_seed_{size}")
        hook(seed).refresh(dataset(str(base)), mode=RefreshMode.FULL)
        seeds[size] = (seed / f"{TABLE}.duckdb", base, plus)
    samples: dict[str, dict[str, list[float]]] = {str(s): {"append": [], "noop": []} for s in sizes}
    for rep in range(reps):
        for size in sizes if rep % 2 == 0 else tuple(reversed(sizes)):
            seeded, base, plus = seeds[size]
            out = _fresh(work / "append_scale_out")
            shutil.copyfile(seeded, out / seeded.name)
            h = hook(out)
            h.refresh(dataset(str(base)), mode=RefreshMode.APPEND)  # untimed: the copy read whole, recorded
            for kind in ("append", "noop"):
                h = hook(out)
                gc.collect()
                started = time.perf_counter()
                result = h.refresh(dataset(str(plus)), mode=RefreshMode.APPEND)
                seconds = time.perf_counter() - started
                expected = drop_rows if kind == "append" else 0
                if result.rows != expected or result.total_rows != size + drop_rows:
                    raise RuntimeError(
                        f"{kind} into {size:,} rows loaded {result.rows:,} (total {result.total_rows:,}); "
                        f"expected {expected:,} ({size + drop_rows:,})"
                    )
                samples[str(size)][kind].append(seconds)
                log(f"  rep {rep + 1}/{reps} {kind} {drop_rows:,} rows into {size:,}: {seconds:.3f}s")
            shutil.rmtree(out, ignore_errors=True)
    for seeded, _base, _plus in seeds.values():
        shutil.rmtree(seeded.parent, ignore_errors=True)
    medians = {size: {k: statistics.median(v) for k, v in kinds.items()} for size, kinds in samples.items()}
    small, large = str(min(sizes)), str(max(sizes))
    return {
        "sizes": list(sizes),
        "drop_rows": drop_rows,
        "base_files": BASE_FILES,
        "median_s": medians,
        "samples_s": samples,
        "largest_vs_smallest": round(medians[large]["append"] / medians[small]["append"], 4),
        "noop_s": round(medians[large]["noop"], 4),
    }
