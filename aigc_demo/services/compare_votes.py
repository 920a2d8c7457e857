"""Blind votes on text comparisons, and the leaderboards made of them.

A visitor's own votes live in their page session (the UI keeps the list; `add_vote` bounds it),
so they are theirs alone and go when the session does. The server-wide board keeps, for each
voter and each pair of models, only that voter's latest verdict (a voter is a visitor id and a
client address: either one repeating replaces the earlier verdict, so neither a page reload nor
a fresh client makes a new voter); the board holds at most
MAX_SERVER_ENTRIES verdicts (the oldest are dropped) and only models every visitor can see
(never a visitor's own `yours/...` or `shared/...` models).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from aigc_demo.errors import UserError

MAX_SESSION_VOTES = 200  # a visitor's own list keeps the latest this many
MAX_SERVER_ENTRIES = 20_000  # (visitor, pair) verdicts on the server-wide board
TIE = "tie"
PRIVATE_PREFIXES = ("yours/", "shared/")


@dataclass(frozen=True)
class Vote:
    """One verdict: the models shown (in column order A, B, C) and the winning column (None: tie)."""

    models: tuple[str, ...]
    winner: int | None


@dataclass
class Standing:
    model: str
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def votes(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        """Wins over votes, a tie counting half (0 when the model has no votes)."""
        return (self.wins + 0.5 * self.ties) / self.votes if self.votes else 0.0


def make_vote(models: Iterable[str], choice: Any) -> Vote:
    """A vote for column `choice` ("A", "B", "C") or "tie" among the shown `models`."""
    models = tuple(models)
    letters = "ABC"[:len(models)]
    if not isinstance(choice, str) or choice.strip().upper() not in (*letters, TIE.upper()):
        raise UserError(f"Vote for one of {', '.join(letters)} or tie")
    text = choice.strip().upper()
    return Vote(models, None if text == TIE.upper() else letters.index(text))


def pairs(vote: Vote) -> list[tuple[str, str, int]]:
    """The vote as pairwise results (a, b, +1 a won / -1 b won / 0 tie), a model never against itself."""
    found = []
    for i, a in enumerate(vote.models):
        for j in range(i + 1, len(vote.models)):
            b = vote.models[j]
            if a == b:
                continue
            if vote.winner is None or vote.winner not in (i, j):
                result = 0 if vote.winner is None else None
            else:
                result = 1 if vote.winner == i else -1
            if result is not None:  # with three columns, the two losers' pair says nothing
                found.append((a, b, result))
    return found


def add_vote(votes: list[Vote] | None, vote: Vote, limit: int = MAX_SESSION_VOTES) -> list[Vote]:
    """The visitor's list with `vote` added (a new list; the oldest dropped beyond `limit`)."""
    return [*(votes or []), vote][-limit:]


def standings(results: Iterable[tuple[str, str, int]]) -> list[Standing]:
    """Per model: wins, losses, ties; best win rate first (then most votes, then name)."""
    table: dict[str, Standing] = {}
    for a, b, result in results:
        first, second = table.setdefault(a, Standing(a)), table.setdefault(b, Standing(b))
        if result > 0:
            first.wins, second.losses = first.wins + 1, second.losses + 1
        elif result < 0:
            first.losses, second.wins = first.losses + 1, second.wins + 1
        else:
            first.ties, second.ties = first.ties + 1, second.ties + 1
    return sorted(table.values(), key=lambda s: (-s.win_rate, -s.votes, s.model))


def leaderboard(votes: Iterable[Vote]) -> list[Standing]:
    """A visitor's own leaderboard from their votes."""
    return standings(result for vote in votes for result in pairs(vote))


@dataclass
class _Verdict:
    visitor: str
    address: str
    result: int


class ServerBoard:
    """Everyone's votes: one verdict per voter and pair of models, bounded, thread-safe.

    A voter is a visitor id *and* a client address: a verdict replaces any earlier one on the
    same pair from the same visitor or from the same address, so a reload, a fresh API client or
    a new browser profile behind one address is still one voter (a visitor whose address
    changes is still one voter too). Behind a proxy the address is the one the operator trusts
    (ui/sessions.client_address).
    """

    def __init__(self, limit: int = MAX_SERVER_ENTRIES) -> None:
        self.limit = limit
        self._entries: OrderedDict[tuple[str, str, str, str], _Verdict] = OrderedDict()
        self._by_visitor: dict[tuple[str, str, str], tuple[str, str, str, str]] = {}
        self._by_address: dict[tuple[str, str, str], tuple[str, str, str, str]] = {}
        self._lock = threading.Lock()

    def _remove(self, key: tuple[str, str, str, str]) -> None:
        verdict = self._entries.pop(key, None)
        if verdict is None:
            return
        _, a, b, _ = key
        if self._by_visitor.get((verdict.visitor, a, b)) == key:
            del self._by_visitor[(verdict.visitor, a, b)]
        if verdict.address and self._by_address.get((verdict.address, a, b)) == key:
            del self._by_address[(verdict.address, a, b)]

    def record(self, visitor: str | None, vote: Vote, address: str = "") -> int:
        """Count `vote` for `visitor` from `address` (replacing that visitor's and that
        address's earlier verdict on each pair); returns the pairs counted (0 without a
        visitor, or for private models)."""
        if not visitor:
            return 0
        address = address or ""
        counted = 0
        with self._lock:
            for a, b, result in pairs(vote):
                if a.startswith(PRIVATE_PREFIXES) or b.startswith(PRIVATE_PREFIXES):
                    continue
                if b < a:  # one key per unordered pair
                    a, b, result = b, a, -result
                for index, who in ((self._by_visitor, visitor), (self._by_address, address)):
                    earlier = index.get((who, a, b)) if who else None
                    if earlier is not None:
                        self._remove(earlier)
                key = (visitor, address, a, b)
                self._entries[key] = _Verdict(visitor, address, result)
                self._by_visitor[(visitor, a, b)] = key
                if address:
                    self._by_address[(address, a, b)] = key
                counted += 1
            while len(self._entries) > self.limit:
                self._remove(next(iter(self._entries)))
        return counted

    def standings(self) -> list[Standing]:
        with self._lock:
            results = [(a, b, v.result) for (_, _, a, b), v in self._entries.items()]
        return standings(results)

    def voters(self) -> int:
        """How many voters the board holds: distinct client addresses (a visitor seen without
        one counts by its id), so fresh clients from one address are one voter."""
        with self._lock:
            return len({v.address or f"visitor:{v.visitor}" for v in self._entries.values()})

    def __len__(self) -> int:
        return len(self._entries)


board = ServerBoard()  # the app's one server-wide board
