"""ISMN downloads → station table + daily series, on the real ISMN samples (tests/data/ismn, MIT).

Expected values are computed here from the raw lines with an independent parse (plain string
splitting of the file inside the zip), so the reader is checked against the file, not against
itself. Two synthetic station folders check what the samples cannot show: sensors averaged, a
day with too few hours, values out of range.
"""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from core.evaluation.stations import read_insitu_csv, read_stations_csv
from core.io.ismn import IsmnOptions, read_ismn, usda_texture, write_series_csv, write_stations_csv

DATA = Path(__file__).resolve().parents[1] / "data" / "ismn"
SEPARATE = DATA / "Data_seperate_files_20170810_20180809.zip"
HEADER = DATA / "Data_header_values.zip"


def _raw_lines(zip_path: Path, fragment: str) -> list[list[str]]:
    with zipfile.ZipFile(zip_path) as z:
        name = next(n for n in z.namelist() if fragment in n and n.endswith(".stm"))
        return [ln.split() for ln in z.read(name).decode().replace("\r", "\n").split("\n") if ln.strip()]


def _expected_daily(records, keep=("G",), min_hours=12):
    """{date: mean} from (day, time, value, flag) tuples, written independently of the reader."""
    by_day = {}
    for day, time, value, flag in records:
        if flag not in keep or not 0 <= float(value) <= 1:
            continue
        by_day.setdefault(day, []).append((time[:2], float(value)))
    out = {}
    for day, items in by_day.items():
        if len({h for h, _ in items}) >= min_hours:
            out[dt.date(*map(int, day.split("/")))] = sum(v for _, v in items) / len(items)
    return out


def test_ceop_separate_files_daily_means_counts_and_static_classes():
    result = read_ismn(str(SEPARATE), IsmnOptions(depth_max=0.25))
    assert [s.id for s in result.stations] == ["COSMOS_ARM-1", "COSMOS_Barrow-ARM"]
    arm = result.stations[0]
    assert (arm.lat, arm.lon, arm.elevation) == (36.6054, -97.4878, 322.0)
    assert arm.attrs["land_cover"] == "Grassland" and arm.attrs["land_cover_code"] == "130"
    assert arm.attrs["climate"] == "Cfa"
    # top layer (0–0.30 m) of the static file: clay 23, sand 36, silt 41 % → loam
    assert (arm.attrs["clay_pct"], arm.attrs["sand_pct"], arm.attrs["silt_pct"]) == ("23.00", "36.00", "41.00")
    assert arm.attrs["soil_texture"] == "loam"
    assert result.stations[1].attrs["climate"] == "ET" and result.stations[1].attrs["land_cover"] == "Water"

    raw = _raw_lines(SEPARATE, "ARM-1_sm_")
    expected = _expected_daily((t[0], t[1], t[12], t[13]) for t in raw)
    got = {d: v for d, v in zip(result.dates, result.values[:, 0]) if np.isfinite(v)}
    assert got.keys() == expected.keys()
    assert np.allclose([got[d] for d in expected], list(expected.values()), atol=1e-12)
    assert got[dt.date(2017, 8, 10)] == pytest.approx(0.212791667, abs=1e-9)  # the 24 readings of that day
    sensor = arm.sensors[0]
    assert sensor.kept == sum(t[13] == "G" for t in raw)
    assert sensor.dropped_flag == sum(t[13] != "G" for t in raw)
    assert sensor.dropped_range == 0
    assert any(line.startswith("COSMOS_ARM-1 · Cosmic-ray-Probe 0–0.19 m: 6514 readings kept, 351 dropped by flag")
               for line in result.log)


def test_default_depth_keeps_no_cosmic_ray_probe():
    with pytest.raises(InputError, match="none of its 2 soil-moisture sensors lies within 0–0.05 m"):
        read_ismn(str(SEPARATE))


def test_header_values_format_flags_depth_tolerance_and_period(tmp_path):
    # Not one reading of this sample is flagged G: the error says which flags were found.
    with pytest.raises(InputError, match=r"0 readings kept.*U ×"):
        read_ismn(str(HEADER))
    opts = IsmnOptions(flags=("G", "U"), start=dt.date(2010, 1, 1), end=dt.date(2010, 12, 31))
    result = read_ismn(str(HEADER), opts)
    ids = [s.id for s in result.stations]
    assert "SCAN_Abrams" in ids and "MAQU_CST-01" in ids and len(ids) == 8  # SCAN's 0.0508 m counts as 5 cm
    assert result.dates[0] >= dt.date(2010, 1, 1) and result.dates[-1] <= dt.date(2010, 12, 31)
    j = ids.index("SCAN_Abrams")
    abrams = result.stations[j]
    assert abrams.sensors[0].sensor == "Hydraprobe-Analog-(2.5-Volt)" and abrams.sensors[0].depth_to == 0.0508

    raw = _raw_lines(HEADER, "Abrams_sm_")[1:]
    in_2010 = [t for t in raw if t[0].startswith("2010/")]
    expected = _expected_daily(((t[0], t[1], t[2], t[3]) for t in in_2010), keep=("G", "U"))
    got = {d: v for d, v in zip(result.dates, result.values[:, j]) if np.isfinite(v)}
    assert got.keys() == expected.keys() and len(got) > 100
    assert np.allclose([got[d] for d in expected], list(expected.values()), atol=1e-12)
    assert abrams.sensors[0].kept == sum(t[3] in ("G", "U") for t in in_2010)

    # a letter keeps its family: D02,D04 is kept with "U,D"
    wide = read_ismn(str(HEADER), IsmnOptions(flags=("U", "D"), start=dt.date(2010, 1, 1), end=dt.date(2010, 12, 31)))
    kept = wide.stations[[s.id for s in wide.stations].index("SCAN_Abrams")].sensors[0].kept
    assert kept == sum(t[3] == "U" or all(p.startswith("D") for p in t[3].split(",")) for t in in_2010)

    with pytest.raises(InputError, match="none of its 8 soil-moisture sensors lies within 0–0.04 m"):
        read_ismn(str(HEADER), IsmnOptions(depth_max=0.04, flags=("U",)))


def test_folder_equals_zip(tmp_path):
    with zipfile.ZipFile(SEPARATE) as z:
        z.extractall(tmp_path)
    a = read_ismn(str(SEPARATE), IsmnOptions(depth_max=0.25))
    b = read_ismn(str(tmp_path), IsmnOptions(depth_max=0.25))
    assert a.dates == b.dates and np.array_equal(a.values, b.values, equal_nan=True)
    assert [s.attrs for s in a.stations] == [s.attrs for s in b.stations]


def _header_file(folder: Path, network: str, station: str, sensor: str, readings: list[tuple[str, float, str]]) -> None:
    d = folder / network / station
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"{network} {network} {station} 40.00000 -75.00000 10.00 0.05 0.05 {sensor}"]
    lines += [f"{when} {v:.4f} {flag} M" for when, v, flag in readings]
    (d / f"{network}_{network}_{station}_sm_0.050000_0.050000_{sensor}_20180101_20180102.stm").write_text("\n".join(lines) + "\n")


def test_sensors_of_a_station_are_averaged_and_short_days_dropped(tmp_path):
    hours = [f"{h:02d}:00" for h in range(24)]
    _header_file(tmp_path, "NET", "S1", "probeA", [(f"2018/01/01 {h}", 0.10, "G") for h in hours]
                 + [(f"2018/01/02 {h}", 0.20, "G") for h in hours[:11]])          # 11 hours: too few
    _header_file(tmp_path, "NET", "S1", "probeB", [(f"2018/01/01 {h}", 0.30, "G") for h in hours]
                 + [(f"2018/01/02 {h}", 0.40, "G") for h in hours[:12]]          # 12 hours: enough
                 + [("2018/01/02 13:00", 1.5, "G"), ("2018/01/02 14:00", -0.1, "G")])
    result = read_ismn(str(tmp_path))
    (st,) = result.stations
    assert st.attrs["sensors"] == "probeA; probeB"
    assert result.dates == [dt.date(2018, 1, 1), dt.date(2018, 1, 2)]
    assert result.values[:, 0] == pytest.approx([0.2, 0.4])  # mean of both probes; day 2: probe B only
    a, b = st.sensors
    assert (a.short_days, b.short_days) == (1, 0)
    assert (b.kept, b.dropped_range) == (36, 2)
    relaxed = read_ismn(str(tmp_path), IsmnOptions(min_hours_share=11 / 24))
    assert relaxed.values[1, 0] == pytest.approx(0.3)  # (0.20 + 0.40) / 2


def test_outputs_are_the_layout_scoring_reads(tmp_path):
    result = read_ismn(str(SEPARATE), IsmnOptions(depth_max=0.25))
    series = write_series_csv(result, str(tmp_path / "daily.csv"))
    stations = read_stations_csv(write_stations_csv(result, str(tmp_path / "stations.csv")))
    dates, values = read_insitu_csv(series)
    assert [s.id for s in stations] == ["COSMOS_ARM-1", "COSMOS_Barrow-ARM"]
    assert stations[0].name == "ARM-1" and stations[0].lat == pytest.approx(36.6054)
    assert stations[0].attrs["land_cover"] == "Grassland" and stations[0].attrs["soil_texture"] == "loam"
    assert dates == result.dates
    assert np.allclose(values["COSMOS_ARM-1"], result.values[:, 0], rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize("sand, silt, clay, name", [
    (92, 5, 3, "sand"), (80, 10, 10, "sandy loam"), (40, 40, 20, "loam"), (20, 65, 15, "silt loam"),
    (5, 85, 10, "silt"), (30, 35, 35, "clay loam"), (10, 55, 35, "silty clay loam"), (60, 10, 30, "sandy clay loam"),
    (50, 5, 45, "sandy clay"), (5, 45, 50, "silty clay"), (20, 20, 60, "clay"), (82, 12, 6, "loamy sand"),
])
def test_usda_texture_classes(sand, silt, clay, name):
    assert usda_texture(sand, silt, clay) == name


def test_not_an_ismn_download(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="neither a folder nor a .zip"):
        read_ismn(str(tmp_path / "x.txt"))
    with pytest.raises(InputError, match="no ISMN soil-moisture file"):
        read_ismn(str(tmp_path))
