"""The offline backend: geocoding, reverse geocoding, travel estimates, matrix, helpers."""

import math

import pytest

from referral_hub.geo.base import Mode, Place, Point
from referral_hub.geo.distance import EARTH_RADIUS_KM
from referral_hub.geo.offline import OfflineGeo, bounding_box, haversine_km

CITY_HALL = Point(44.9773, -93.2654)
LAKE_ST_STATION = Point(44.9486, -93.2391)


def site(name, lat, lon, address=None, postal_code=None, kind="site"):
    return Place(name, Point(lat, lon), postal_code, kind, "offline", address)


GAZETTEER = (
    site("Hennepin Healthcare", 44.9727, -93.2616, "701 Park Ave, Minneapolis, MN 55415"),
    site("Lake Street / Midtown Station", 44.9486, -93.2391, kind="landmark"),
    site("Midtown Global Market", 44.9487, -93.2603, kind="landmark"),
    site("Café Nuñez Drop-In", 44.9481, -93.2555, "1200 East Lake Street, Minneapolis, MN 55407"),
    site(
        "Northpoint Health & Wellness", 44.9990, -93.2960, "1313 Penn Ave N, Minneapolis, MN 55411"
    ),
    site("St. Stephen's Shelter", 44.9600, -93.2800, "2211 Clinton Ave, Minneapolis, MN 55404"),
    site("Hennepin", 44.9800, -93.2700, kind="landmark"),
)


@pytest.fixture
def geo():
    return OfflineGeo(lambda: GAZETTEER)


def names(places):
    return [p.name for p in places]


def point_along(origin, km, bearing_deg=45.0):
    """The point `km` from origin along a great circle at this bearing."""
    d, b = km / EARTH_RADIUS_KM, math.radians(bearing_deg)
    lat1, lon1 = math.radians(origin.lat), math.radians(origin.lon)
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lon2 = lon1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    return Point(math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180)


# --- geocode: coordinates and ZIPs ---------------------------------------------------------


@pytest.mark.parametrize("text", ["44.97, -93.26", "44.97 -93.26"])
def test_geocode_reads_coordinates(geo, text):
    [place] = geo.geocode(text)
    assert place.kind == "coordinates" and place.point == Point(44.97, -93.26)
    assert place.source == "offline"


@pytest.mark.parametrize("text", ["95.0, -93.26", "44.97, -193.26"])
def test_geocode_out_of_range_coordinates_find_nothing(geo, text):
    assert geo.geocode(text) == []


@pytest.mark.parametrize(
    "text", ["55411", "ZIP 55411", "Minneapolis 55411", "Minneapolis, MN 55411-1234"]
)
def test_geocode_zip_gives_its_centroid(geo, text):
    [place] = geo.geocode(text)
    assert place.kind == "zip" and place.postal_code == "55411"
    assert haversine_km(place.point, Point(45.0, -93.3)) < 2.0


@pytest.mark.parametrize("text", ["00000", "09002"])  # no such ZIP; a ZIP with no position
def test_geocode_zip_without_a_centroid_finds_nothing(geo, text):
    assert geo.geocode(text) == []


def test_leading_five_digits_are_a_house_number_not_a_zip(geo):
    assert geo.geocode("12345 Main St") == []


def test_address_with_zip_puts_the_known_site_before_the_zip_area(geo):
    places = geo.geocode("1313 Penn Ave N, Minneapolis MN 55411")
    assert names(places[:2]) == ["Northpoint Health & Wellness", "Minneapolis, MN 55411"]


# --- geocode: gazetteer --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hennepin Healthcare", "Hennepin Healthcare"),
        ("  hennepin   HEALTHCARE ", "Hennepin Healthcare"),
        ("cafe nunez drop in", "Café Nuñez Drop-In"),  # accents and punctuation
        ("St Stephens Shelter", "St. Stephen's Shelter"),
        ("saint stephen's shelter", "St. Stephen's Shelter"),
    ],
)
def test_name_matches_regardless_of_case_punctuation_and_accents(geo, text, expected):
    assert names(geo.geocode(text))[0] == expected


@pytest.mark.parametrize(
    "text",
    ["1200 E Lake St", "1200 east lake street", "1200 E. Lake St., Minneapolis"],
)
def test_address_matches_with_street_words_abbreviated_or_not(geo, text):
    [place] = geo.geocode(text)
    assert place.name == "Café Nuñez Drop-In" and place.kind == "site"


def test_exact_beats_prefix(geo):
    # "Hennepin" is a landmark of its own and the start of "Hennepin Healthcare".
    assert names(geo.geocode("hennepin")) == ["Hennepin", "Hennepin Healthcare"]


def test_prefix_beats_contains(geo):
    # "Midtown Global Market" starts with "midtown"; the station only contains it.
    assert names(geo.geocode("midtown")) == [
        "Midtown Global Market",
        "Lake Street / Midtown Station",
    ]


def test_contains_matches_from_a_word_start(geo):
    assert names(geo.geocode("midtown sta")) == ["Lake Street / Midtown Station"]
    assert geo.geocode("own station") == []


def test_a_name_said_within_a_phrase_is_found(geo):
    assert names(geo.geocode("midtown global market entrance")) == ["Midtown Global Market"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hennepin Helthcare", "Hennepin Healthcare"),
        ("Northpiont Health and Wellness", "Northpoint Health & Wellness"),
        ("hennepin helthc", "Hennepin Healthcare"),  # a typo in a name still being typed
        ("1200 Lake St", "Café Nuñez Drop-In"),  # the E left out of the address
    ],
)
def test_typos_match_fuzzily(geo, text, expected):
    assert names(geo.geocode(text))[0] == expected


def test_fuzzy_ranks_below_exact_and_prefix():
    gazetteer = (site("Mercy Hospital", 45.0, -93.0), site("Mercy Hospitol", 45.1, -93.1))
    assert names(OfflineGeo(lambda: gazetteer).geocode("mercy hospital")) == [
        "Mercy Hospital",
        "Mercy Hospitol",
    ]


@pytest.mark.parametrize("text", ["qwertyuiop", "the", "xx", "Duluth Harbor", "", "   ", "!!!"])
def test_unrecognised_text_finds_nothing(geo, text):
    assert geo.geocode(text) == []


def test_gazetteer_is_read_on_every_call():
    places = [site("Old Name", 45.0, -93.0)]
    geo = OfflineGeo(lambda: tuple(places))
    assert names(geo.geocode("old name")) == ["Old Name"]
    places[0] = site("New Name", 45.0, -93.0)
    assert geo.geocode("old name") == [] and names(geo.geocode("new name")) == ["New Name"]


# --- reverse -------------------------------------------------------------------------------


def test_reverse_finds_a_site_within_300_m(geo):
    near = point_along(Point(44.9727, -93.2616), 0.25, bearing_deg=200)
    assert geo.reverse(near).name == "Hennepin Healthcare"


def test_reverse_picks_the_nearest_of_close_places():
    a, b = site("A", 45.0, -93.0), site("B", 45.0, -93.002)  # about 160 m apart
    geo = OfflineGeo(lambda: (a, b))
    assert geo.reverse(Point(45.0, -93.0015)).name == "B"
    assert geo.reverse(Point(45.0, -93.0005)).name == "A"


def test_reverse_beyond_300_m_of_any_site_names_the_zip_area(geo):
    # 400 m from Northpoint: no longer "at" it, but inside north Minneapolis.
    place = geo.reverse(point_along(Point(44.9990, -93.2960), 0.4, bearing_deg=270))
    assert place.kind == "zip" and place.postal_code == "55411"


def test_reverse_far_from_any_zip_is_none(geo):
    assert geo.reverse(Point(47.5, -87.5)) is None  # Lake Superior
    assert geo.reverse(Point(0.0, 0.0)) is None  # where the ZIP data puts ZIPs it cannot place


# --- travel --------------------------------------------------------------------------------


def test_city_hall_to_lake_street_station(geo):
    assert haversine_km(CITY_HALL, LAKE_ST_STATION) == pytest.approx(3.8, abs=0.1)
    estimate = geo.travel(CITY_HALL, LAKE_ST_STATION)
    assert 8 <= estimate.minutes <= 25
    assert estimate.mode is Mode.DRIVE and estimate.source == "estimate" and estimate.estimated
    # Street distance is longer than the straight line, not absurdly so.
    assert 1.1 < estimate.distance_km / 3.8 < 1.6


@pytest.mark.parametrize("mode", list(Mode))
def test_travel_time_rises_with_distance_across_every_band(geo, mode):
    # Steps cross the circuity band ends (1, 5, 20 km) and the driving speed change (10 km).
    distances = [0, 0.5, 0.99, 1.0, 1.01, 3, 4.99, 5.01, 7.5, 8.1, 9.9, 15, 19.99, 20.01, 60]
    estimates = [geo.travel(CITY_HALL, point_along(CITY_HALL, km), mode) for km in distances]
    minutes = [e.minutes for e in estimates]
    assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
    km = [e.distance_km for e in estimates]
    assert km == sorted(km)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("km", [0, 0.3, 4, 40])
def test_range_holds_the_estimate(geo, mode, km):
    e = geo.travel(CITY_HALL, point_along(CITY_HALL, km), mode)
    assert 0 <= e.minutes_low <= e.minutes <= e.minutes_high


def test_driving_range_is_wider_above_than_below(geo):
    e = geo.travel(CITY_HALL, LAKE_ST_STATION)
    assert e.minutes_high - e.minutes > e.minutes - e.minutes_low


@pytest.mark.parametrize("km", [1, 3.8, 12])
def test_walking_is_slower_than_driving_and_wheelchair_slower_still(geo, km):
    dest = point_along(CITY_HALL, km)
    drive, walk, chair = (geo.travel(CITY_HALL, dest, m).minutes for m in Mode)
    assert drive < walk < chair


def test_driving_carries_a_fixed_overhead_walking_does_not(geo):
    assert geo.travel(CITY_HALL, CITY_HALL).minutes == pytest.approx(3.0)
    assert geo.travel(CITY_HALL, CITY_HALL, Mode.WALK).minutes == 0


def test_walking_pace_is_about_5_km_per_hour(geo):
    e = geo.travel(CITY_HALL, point_along(CITY_HALL, 10), Mode.WALK)
    assert e.distance_km / (e.minutes / 60) == pytest.approx(4.8)


# --- matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_matrix_has_a_row_per_origin_and_agrees_with_travel(geo, mode):
    origins = [CITY_HALL, LAKE_ST_STATION, Point(44.9990, -93.2960)]
    dests = [
        point_along(CITY_HALL, km, bearing)
        for km, bearing in [(0, 0), (2, 90), (9, 200), (30, 300)]
    ]
    rows = geo.matrix(origins, dests, mode)
    assert [len(row) for row in rows] == [4, 4, 4]
    for origin, row in zip(origins, rows, strict=True):
        assert row == [geo.travel(origin, dest, mode) for dest in dests]


def test_matrix_of_nothing_is_empty(geo):
    assert geo.matrix([], [CITY_HALL]) == []
    assert geo.matrix([CITY_HALL], []) == [[]]


# --- distance helpers ----------------------------------------------------------------------


def test_haversine_known_distances():
    assert haversine_km(CITY_HALL, CITY_HALL) == 0
    # One degree of latitude is 111.2 km on the mean sphere.
    assert haversine_km(Point(45, -93), Point(46, -93)) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(Point(0, 0), Point(0, 180)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert haversine_km(CITY_HALL, LAKE_ST_STATION) == haversine_km(LAKE_ST_STATION, CITY_HALL)


@pytest.mark.parametrize("center", [CITY_HALL, Point(-33.9, 18.4), Point(70.0, 25.0)])
def test_bounding_box_holds_the_whole_circle(center):
    min_lat, min_lon, max_lat, max_lon = bounding_box(center, 10)
    for bearing in range(0, 360, 5):
        p = point_along(center, 9.999, bearing)
        assert min_lat <= p.lat <= max_lat and min_lon <= p.lon <= max_lon
    # ...and not much more: points a little outside the circle, due north and east, are out.
    north, east = point_along(center, 10.1, 0), point_along(center, 10.1, 90)
    assert north.lat > max_lat
    assert east.lon > max_lon


def test_bounding_box_spans_all_longitudes_across_the_antimeridian_or_a_pole():
    assert bounding_box(Point(0, 179.99), 5)[1::2] == (-180.0, 180.0)
    assert bounding_box(Point(89.99, 0), 5) == (
        pytest.approx(89.945, abs=0.001),
        -180.0,
        90.0,
        180.0,
    )


def test_bounding_box_refuses_a_negative_radius():
    with pytest.raises(ValueError):
        bounding_box(CITY_HALL, -1)
