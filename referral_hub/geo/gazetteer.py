"""Name and address matching over a gazetteer of known places (sites, landmarks)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from referral_hub.geo.base import Place

# Street words people write either way; both sides of a comparison are reduced to the
# USPS abbreviation so "1200 East Lake Street" finds "1200 E Lake St". "saint" → "st" is
# harmless because the comparison never needs to tell a saint from a street.
ABBREVIATIONS = {
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "drive": "dr",
    "road": "rd",
    "lane": "ln",
    "place": "pl",
    "court": "ct",
    "circle": "cir",
    "terrace": "ter",
    "parkway": "pkwy",
    "highway": "hwy",
    "square": "sq",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    "saint": "st",
    "mount": "mt",
    "fort": "ft",
}

# Tiers of a match, best first. Within a tier, the closer the lengths (or the higher the
# difflib ratio) the better.
EXACT, PREFIX, CONTAINS, FUZZY = 4, 3, 2, 1

# Shorter queries match too much by prefix or substring ("st" is in every street name).
MIN_PARTIAL_LEN = 3
# difflib ratio below which a typo is more likely another place; 0.8 keeps one or two
# wrong letters in a name of ten or more and refuses unrelated words of similar length.
FUZZY_CUTOFF = 0.8
MIN_FUZZY_LEN = 4
MAX_RESULTS = 10

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower-case words without accents or punctuation, street words abbreviated."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    # Apostrophes join rather than split, so "Mary's Place" and "Marys Place" agree.
    bare = bare.replace("'", "").replace("\u2019", "")
    words = _NOT_WORD.sub(" ", bare).split()
    return " ".join(ABBREVIATIONS.get(word, word) for word in words)


@dataclass(frozen=True, slots=True)
class Match:
    """A gazetteer place with how well it matched; sorts best first."""

    place: Place
    tier: int
    closeness: float

    @property
    def rank(self) -> tuple[int, float]:
        return (self.tier, self.closeness)


def _keys(place: Place) -> tuple[str, ...]:
    """The normalized strings a place answers to: its name, its address, the street line."""
    keys = [normalize(place.name)]
    if place.address:
        keys.append(normalize(place.address))
        keys.append(normalize(place.address.split(",", 1)[0]))
    return tuple(dict.fromkeys(k for k in keys if k))


def _score(query: str, key: str, matcher: SequenceMatcher) -> tuple[int, float] | None:
    """How `query` (normalized, set as the matcher's second sequence) matches `key`."""
    if key == query:
        return EXACT, 1.0
    closeness = min(len(query), len(key)) / max(len(query), len(key))
    if len(query) >= MIN_PARTIAL_LEN:
        if key.startswith(query):
            return PREFIX, closeness
        # Contained from the start of a word: "midtown sta" in "lake st midtown station".
        if f" {query}" in f" {key}":
            return CONTAINS, closeness
    # The whole name said within a longer phrase ("midtown global market entrance"): a
    # weaker sign than the other way round, so it ranks with the typos, by how much it covers.
    if len(key) > MIN_PARTIAL_LEN and f" {key} " in f" {query} ":
        return FUZZY, closeness
    if len(query) < MIN_FUZZY_LEN:
        return None
    # Against the whole key, and against its first words, so that a typo in a name still
    # being typed ("hennepin helthc") finds it as well as one in a finished name.
    head = " ".join(key.split()[: len(query.split())])
    best = 0.0
    for candidate in dict.fromkeys((key, head)):
        matcher.set_seq1(candidate)
        # The cheap upper bounds first, as difflib.get_close_matches does.
        if matcher.real_quick_ratio() >= FUZZY_CUTOFF and matcher.quick_ratio() >= FUZZY_CUTOFF:
            best = max(best, matcher.ratio())
    if best >= FUZZY_CUTOFF:
        return FUZZY, best
    return None


class GazetteerIndex:
    """Places with their match keys computed once, searched by name or address."""

    # Grid cells of about 1 km for nearby lookups (reverse geocoding) without a full scan.
    CELL_DEGREES = 0.01

    def __init__(self, places: Sequence[Place]) -> None:
        self.places = places
        self._entries = [(place, _keys(place)) for place in places]
        self._cells: dict[tuple[int, int], list[Place]] = {}
        for place in places:
            self._cells.setdefault(self._cell(place.point.lat, place.point.lon), []).append(place)

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return int(lat // self.CELL_DEGREES), int(lon // self.CELL_DEGREES)

    def near(self, min_lat: float, min_lon: float, max_lat: float, max_lon: float) -> list[Place]:
        """Places inside a small bounding box, read from the grid cells it covers."""
        lat0, lon0 = self._cell(min_lat, min_lon)
        lat1, lon1 = self._cell(max_lat, max_lon)
        if (lat1 - lat0 + 1) * (lon1 - lon0 + 1) > 400:  # a big box: scanning is cheaper
            candidates = self.places
        else:
            candidates = [
                place
                for i in range(lat0, lat1 + 1)
                for j in range(lon0, lon1 + 1)
                for place in self._cells.get((i, j), ())
            ]
        return [
            p
            for p in candidates
            if min_lat <= p.point.lat <= max_lat and min_lon <= p.point.lon <= max_lon
        ]

    def search(self, *queries: str) -> list[Match]:
        """Places matching any of `queries`, best first; each place once, at its best."""
        best: dict[int, Match] = {}
        for raw in queries:
            query = normalize(raw)
            if not query:
                continue
            matcher = SequenceMatcher(None, autojunk=False)
            matcher.set_seq2(query)  # difflib caches its analysis of the second sequence
            for i, (place, keys) in enumerate(self._entries):
                for key in keys:
                    scored = _score(query, key, matcher)
                    if scored and (i not in best or scored > best[i].rank):
                        best[i] = Match(place, *scored)
        ranked = sorted(best.values(), key=lambda m: (-m.tier, -m.closeness, m.place.name))
        return ranked[:MAX_RESULTS]


def places_of(matches: Iterable[Match]) -> list[Place]:
    """The places of `matches`, in order."""
    return [m.place for m in matches]
