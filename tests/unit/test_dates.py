import datetime as dt

import pytest

from core.inputs.dates import nearest_earlier, parse_date, parse_date_list


@pytest.mark.parametrize("text,want", [
    ("ESA_CCI_SM_v45_Delaware_20180131.tif", dt.date(2018, 1, 31)),
    ("SMAP_L3_2019-07-04_am.tif", dt.date(2019, 7, 4)),
    ("ndvi_2020_02_29", dt.date(2020, 2, 29)),
    ("tile_123456789_20180230_x", None),  # not a real day
    ("no date here", None),
])
def test_parse_date(text, want):
    assert parse_date(text) == want


def test_parse_date_list_names_the_bad_item():
    assert parse_date_list("2018-01-01, 20180102") == [dt.date(2018, 1, 1), dt.date(2018, 1, 2)]
    with pytest.raises(ValueError, match="'jan3'"):
        parse_date_list("2018-01-01, jan3")


def test_nearest_earlier_respects_tolerance_and_static_fallback():
    c = [dt.date(2018, 1, 1), dt.date(2018, 1, 9)]
    assert nearest_earlier(dt.date(2018, 1, 10), c, 8) == 1
    assert nearest_earlier(dt.date(2018, 1, 8), c, 8) == 0
    assert nearest_earlier(dt.date(2018, 1, 30), c, 8) is None
    assert nearest_earlier(dt.date(2018, 1, 30), c + [None], 8) == 2
