"""The Compare tab's services and endpoints: digits from every family with the same seed, text from
several models streaming at once, blind votes and their leaderboards."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from aigc_demo.errors import UserError
from aigc_demo.services import compare, compare_text, compare_votes
from aigc_demo.services.model_ids import REFUSED
from aigc_demo.services.textgen import GenerationSettings


@pytest.fixture(scope="module")
def folders(weights_dir: Path) -> dict[str, str]:
    return {"gan": str(weights_dir / "tiny-gan"), "diffusion": str(weights_dir / "tiny-diffusion"),
            "vae": str(weights_dir / "tiny-vae-4d")}


@pytest.fixture(scope="module")
def classifier(weights_dir: Path) -> str:
    return str(weights_dir / "tiny-classifier")


# ---- digits ------------------------------------------------------------------------------------

def test_every_family_draws_the_same_request_reproducibly(folders, classifier) -> None:
    first = compare.compare_digits("37", 2, 5, folders, classifier)
    again = compare.compare_digits([3, 7], 2, 5, folders, classifier)
    other = compare.compare_digits("37", 2, 6, folders, classifier)
    assert [r.family for r in first] == ["gan", "diffusion", "vae"]
    for a, b, c in zip(first, again, other):
        assert a.error is None, a.error
        assert a.images.shape == (4, 28, 28) and a.images.dtype == np.uint8
        assert np.array_equal(a.images, b.images), f"{a.family}: the same seed drew other digits"
        assert a.grid.size == b.grid.size == (2 * (2 * 30 + 2), 2 * (2 * 30 + 2))  # 2 digits x 2 copies, 2x
        assert a.seconds > 0 and a.per_image_s == pytest.approx(a.seconds / 4)
        if a.family != "vae" or not a.missing:  # a seed of its own draws other digits
            assert not np.array_equal(a.images, c.images), a.family


def test_badges_come_from_the_model_cards(folders, classifier) -> None:
    results = {r.family: r for r in compare.compare_digits("1", 1, 0, folders, classifier)}
    assert results["gan"].title == "Tiny GAN"
    assert [(m.name, m.value) for m in results["gan"].metrics] == [("FID", 3.5)]
    assert results["diffusion"].title == "Tiny diffusion"
    assert [(m.name, m.value) for m in results["diffusion"].metrics] == [("FID / floor", 2.5)]
    assert results["vae"].title == "Tiny VAE 4-D" and results["vae"].metrics == []


def test_the_vae_keeps_what_the_classifier_reads_or_says_it_gave_up(folders, classifier) -> None:
    """Every kept VAE image is read as its requested digit; a digit never read is listed, its
    cells left blank, after the whole (bounded) budget of draws."""
    import torch

    from aigc_demo.services.digits import load_classifier

    labels = np.asarray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    images, draws, missing = compare.vae_digits(labels, 3, folders["vae"], classifier, max_draws=512)
    assert 0 < draws <= 512
    C = load_classifier(classifier)
    with torch.no_grad():
        read = C(torch.from_numpy(images).float().div(255).unsqueeze(1)).argmax(1).numpy()
    for index, label in enumerate(labels):
        if label in missing:
            assert not images[index].any()  # blank: nothing was found for it
        else:
            assert read[index] == label  # rounding to uint8 keeps the classifier's reading
    if missing:
        assert draws == 512  # gave up only after the whole budget
    else:
        assert draws < 512 or len(set(read)) == 10
    result = compare.compare_digits("0123456789", 1, 3, folders, classifier)[2]
    assert result.draws is not None and result.draws <= compare.MAX_VAE_DRAWS
    assert result.missing == sorted(result.missing) and set(result.missing) <= set(range(10))


def test_a_missing_family_says_so_and_the_others_render(folders, classifier, tmp_path: Path) -> None:
    results = compare.compare_digits("12", 1, 0, {**folders, "diffusion": None, "vae": str(tmp_path)}, classifier)
    gan, diffusion, vae = results
    assert gan.error is None and gan.count == 2
    assert diffusion.error == "No diffusion model is available here" and diffusion.grid is None
    assert "weights are missing" in vae.error and vae.grid is None
    no_classifier = compare.compare_digits("1", 1, 0, folders, None)[2]
    assert no_classifier.error.startswith("The VAE needs the digit classifier")


@pytest.mark.parametrize(("digits", "per_digit", "message"), [
    ("12a", 1, "Digits must be 0-9"), ([12], 1, "Digits must be 0-9"), ({"a": 1}, 1, "Digits must be 0-9"),
    ("1", 0, "from 1 to 10"), ("1", 11, "from 1 to 10"), ("1", 1.5, "from 1 to 10"), ("1", "x", "from 1 to 10"),
])
def test_bad_requests_are_clear_messages(digits, per_digit, message) -> None:
    with pytest.raises(UserError, match=message):
        compare.check_request(digits, per_digit, 0)


def test_no_digits_means_all_ten() -> None:
    request = compare.check_request([], 2, 1)
    assert request.digits == list(range(10)) and list(request.labels[:10]) == list(range(10))
    assert len(request.labels) == 20 and request.columns == 5  # two rows of five per copy: squarish
    assert compare.check_request("3 3 1", 1, 0).digits == [1, 3] and compare.check_request("13", 1, 0).columns == 2


# ---- text --------------------------------------------------------------------------------------

def test_two_models_stream_at_the_same_time(weights_dir: Path) -> None:
    refs = [str(weights_dir / "tiny-gpt"), str(weights_dir / "tiny-char-gpt")]
    settings = GenerationSettings(max_new_tokens=60, temperature=0.8, seed=3)
    snapshots = list(compare_text.stream_columns(refs, "def add(a, b):\n", settings, update_interval_s=0.0))
    final = snapshots[-1]
    assert [c.model_id for c in final] == refs
    for column in final:
        assert column.error is None and column.done
        assert column.update.done and column.update.new_tokens > 0 and column.update.text
        assert column.update.tokens_per_s > 0 and column.update.seed == 3
    # concurrency: at some moment both columns had tokens and neither had finished
    both = [s for s in snapshots if all(c.update and c.update.new_tokens and not c.update.done for c in s)]
    assert both, "the columns streamed one after the other"
    again = list(compare_text.stream_columns(refs, "def add(a, b):\n", settings))[-1]
    assert [c.update.text for c in again] == [c.update.text for c in final]  # same seed, same texts


def test_stop_ends_every_column(weights_dir: Path) -> None:
    refs = [str(weights_dir / "tiny-gpt"), str(weights_dir / "tiny-gpt")]  # one model twice: batched
    stop = threading.Event()
    settings = GenerationSettings(max_new_tokens=1000, seed=1)
    for snapshot in compare_text.stream_columns(refs, "x", settings, stop, update_interval_s=0.0):
        if any(c.update and c.update.new_tokens for c in snapshot):
            stop.set()
    for column in snapshot:
        assert column.done and column.update.stop_reason == "stopped" and column.update.new_tokens < 1000


def test_a_failing_column_says_why_and_the_other_streams(weights_dir: Path) -> None:
    refs = [str(weights_dir / "tiny-gpt"), "someone/not-downloaded"]
    final = list(compare_text.stream_columns(refs, "x", GenerationSettings(max_new_tokens=5, seed=0)))[-1]
    assert final[0].error is None and final[0].update.new_tokens > 0
    assert final[1].error == "someone/not-downloaded is not downloaded yet: download it in the Text tab first"


@pytest.mark.parametrize("picked", [["a"], ["a", "", None], ["a", "b", "c", "d"], "ab", None])
def test_two_or_three_columns(picked) -> None:
    with pytest.raises(UserError, match="Pick 2 or 3 models"):
        compare_text.check_columns(picked)


# ---- votes -------------------------------------------------------------------------------------

def test_votes_make_a_leaderboard() -> None:
    votes: list = []
    for models, choice in [(("x", "y"), "A"), (("y", "x"), "a"), (("x", "y"), "tie"), (("x", "z", "y"), "C")]:
        votes = compare_votes.add_vote(votes, compare_votes.make_vote(models, choice))
    board = {s.model: s for s in compare_votes.leaderboard(votes)}
    assert (board["x"].wins, board["x"].losses, board["x"].ties) == (1, 2, 1)
    assert (board["y"].wins, board["y"].losses, board["y"].ties) == (3, 1, 1)
    assert (board["z"].wins, board["z"].losses, board["z"].ties) == (0, 1, 0)
    assert board["y"].votes == 5 and board["y"].win_rate == pytest.approx(3.5 / 5)
    assert compare_votes.leaderboard(votes)[0].model == "y"
    assert compare_votes.pairs(compare_votes.make_vote(("x", "x"), "A")) == []  # never against itself


def test_votes_are_bounded_and_checked() -> None:
    votes: list = []
    for index in range(compare_votes.MAX_SESSION_VOTES + 50):
        votes = compare_votes.add_vote(votes, compare_votes.make_vote((f"m{index}", "n"), "B"))
    assert len(votes) == compare_votes.MAX_SESSION_VOTES and votes[-1].models[0] == f"m{index}"
    for bad in ("C", "", None, 5, "A or B"):
        with pytest.raises(UserError, match="Vote for one of A, B or tie"):
            compare_votes.make_vote(("x", "y"), bad)


def test_the_server_board_counts_a_visitor_once_per_pair() -> None:
    board = compare_votes.ServerBoard(limit=4)
    for _ in range(50):  # one visitor, voting again and again for x over y
        board.record("v1", compare_votes.make_vote(("x", "y"), "A"))
    board.record("v1", compare_votes.make_vote(("y", "x"), "A"))  # changes their mind: y wins now
    assert {s.model: (s.wins, s.losses) for s in board.standings()} == {"y": (1, 0), "x": (0, 1)}
    board.record("v2", compare_votes.make_vote(("x", "y"), "A"))
    assert {s.model: s.votes for s in board.standings()} == {"x": 2, "y": 2}
    assert board.record("v3", compare_votes.make_vote(("yours/mine", "x"), "A")) == 0  # private: not counted
    assert board.record(None, compare_votes.make_vote(("x", "y"), "A")) == 0
    for visitor in range(10):
        board.record(f"w{visitor}", compare_votes.make_vote(("x", "y"), "B"))
    assert len(board) == 4  # bounded: the oldest verdicts went


def test_the_server_board_counts_a_client_address_once_per_pair() -> None:
    """A reload or a fresh client (a new visitor id) from one address is not a new voter; a
    visitor whose address changes is not one either; the board says how many voters it has."""
    board = compare_votes.ServerBoard()
    x_wins, y_wins = compare_votes.make_vote(("x", "y"), "A"), compare_votes.make_vote(("x", "y"), "B")
    for fresh in range(30):  # thirty fresh clients from one address, all for x
        board.record(f"client{fresh}", x_wins, "203.0.113.7")
    assert {s.model: (s.wins, s.losses) for s in board.standings()} == {"x": (1, 0), "y": (0, 1)}
    assert board.voters() == 1 and len(board) == 1
    board.record("client29", y_wins, "198.51.100.2")  # the last one moves to another address
    assert {s.model: (s.wins, s.losses) for s in board.standings()} == {"y": (1, 0), "x": (0, 1)}
    assert board.voters() == 1
    board.record("someone-else", x_wins, "203.0.113.7")  # the first address is free again
    board.record("third", x_wins, "192.0.2.1")
    assert {s.model: s.votes for s in board.standings()} == {"x": 3, "y": 3} and board.voters() == 3
    board.record("third", compare_votes.make_vote(("x", "z"), "A"), "192.0.2.1")  # another pair: counted
    assert board.voters() == 3 and len(board) == 4
    for fresh in range(5):  # no address known (not over HTTP): each visitor id is one voter
        board.record(f"local{fresh}", y_wins)
    assert board.voters() == 8


# ---- through the launched app ------------------------------------------------------------------

def test_compare_digits_endpoint(client) -> None:
    result = client.predict(["3", "8"], 1, 4, "tiny-gan", "tiny-diffusion", "tiny-vae-4d", "tiny-classifier",
                            api_name="/compare_digits")
    gan_image, gan_info, diffusion_image, diffusion_info, vae_image, vae_info, data = result
    for image in (gan_image, diffusion_image, vae_image):
        assert Path(image if isinstance(image, str) else image["path"]).is_file()
    assert "ms per image" in gan_info and "FID" in gan_info and "3.5" in gan_info
    assert "FID / floor" in diffusion_info and "2.5" in diffusion_info
    assert "draws" in vae_info
    assert data["gan"]["metrics"] == [{"name": "FID", "value": 3.5, "unit": ""}]
    assert data["diffusion"]["metrics"][0]["name"] == "FID / floor"
    for family in ("gan", "diffusion", "vae"):
        assert data[family]["images"] == 2 and data[family]["per_image_ms"] > 0
    again = client.predict(["3", "8"], 1, 4, "tiny-gan", "tiny-diffusion", "tiny-vae-4d", "tiny-classifier",
                           api_name="/compare_digits")
    assert Path(again[0] if isinstance(again[0], str) else again[0]["path"]).read_bytes() == \
        Path(gan_image if isinstance(gan_image, str) else gan_image["path"]).read_bytes()


def test_compare_digits_refuses_an_unknown_model(client) -> None:
    with pytest.raises(AppError, match="not one this app offers you"):
        client.predict(["3"], 1, 0, "../../etc", "tiny-diffusion", "tiny-vae-4d", "tiny-classifier",
                       api_name="/compare_digits")
    assert REFUSED.startswith("That model is not one this app offers you")


def test_compare_digits_with_a_missing_family(client) -> None:
    result = client.predict(["3"], 1, 0, "tiny-gan", "", "tiny-vae-4d", "tiny-classifier",
                            api_name="/compare_digits")
    assert result[2] is None and "No diffusion model is available here" in result[3]
    assert result[6]["gan"]["images"] == 1 and result[6]["diffusion"]["error"]


def _compare_text(client, blind: bool, models=("tiny-gpt", "tiny-char-gpt", "")) -> tuple:
    return client.predict("To be", *models, blind, 12, 0.8, 40, 1.0, 1.0, 7, False, api_name="/compare_text")


def test_compare_text_endpoint_streams_two_columns(client) -> None:
    result = _compare_text(client, False)
    heads, texts, stats = result[0:3], result[3:6], result[6:9]
    assert "Tiny GPT" in heads[0] and "Tiny char GPT" in heads[1]
    assert texts[0] and texts[1] and texts[2] == ""
    assert all("tokens/s" in line for line in stats[:2])


def test_compare_text_refuses_an_unknown_model(client) -> None:
    with pytest.raises(AppError, match="not one this app offers you"):
        _compare_text(client, False, ("tiny-gpt", "/etc/passwd", ""))
    with pytest.raises(AppError, match="Pick 2 or 3 models"):
        _compare_text(client, False, ("tiny-gpt", "", ""))


def test_blind_votes_reveal_names_and_stay_with_the_visitor(app_url: str) -> None:
    alice, bob = Client(app_url, verbose=False), Client(app_url, verbose=False)
    with pytest.raises(AppError, match="Nothing to vote on yet"):
        alice.predict("A", api_name="/compare_vote")
    with pytest.raises(AppError, match="two different models"):  # a model against itself says nothing
        _compare_text(alice, True, ("tiny-gpt", "tiny-gpt", ""))
    result = _compare_text(alice, True)
    assert all("·" not in head for head in result[0:3])  # blind: no names
    revealed = alice.predict("A", api_name="/compare_vote")
    heads, message, mine, everyone = revealed[0:3], revealed[3], revealed[4], revealed[5]
    assert {"Tiny GPT", "Tiny char GPT"} == {head.split(" · ")[1] for head in heads[:2]}
    assert "The models were" in message
    assert len(mine["data"]) == 2 and sum(row[1] for row in mine["data"]) == 1  # one win, one loss
    assert any(row[0] in ("Tiny GPT", "Tiny char GPT") for row in everyone["value"]["data"])
    assert everyone["label"].startswith("Everyone: 1 voter")  # every client here is 127.0.0.1
    with pytest.raises(AppError, match="already voted"):
        alice.predict("B", api_name="/compare_vote")
    _compare_text(bob, True)
    bob_board, everyone = bob.predict("tie", api_name="/compare_vote")[4:6]
    assert [row[3] for row in bob_board["data"]] == [1, 1]  # Bob's board: his tie only
    # A fresh client from the same address is not a new voter: Bob's tie replaced Alice's verdict
    # on that pair (before: one win, one loss and a tie each, 2 votes a model).
    pair = [row for row in everyone["value"]["data"] if row[0] in ("Tiny GPT", "Tiny char GPT")]
    assert sorted(row[1:4] + [row[5]] for row in pair) == [[0, 0, 1, 1], [0, 0, 1, 1]]
    assert everyone["label"].startswith("Everyone: 1 voter")
    _compare_text(alice, False)
    with pytest.raises(AppError, match="blind comparisons only"):
        alice.predict("A", api_name="/compare_vote")


def test_share_links_of_both_parts_round_trip() -> None:
    from urllib.parse import parse_qsl

    from aigc_demo.ui.urlstate import build_query, parse_query

    digits = {"part": "digits", "digits": ["3", "5"], "per_digit": 2, "seed": 9, "gan": "tiny-gan",
              "diffusion": "tiny-diffusion", "vae": "tiny-vae-4d"}
    text = {"part": "text", "prompt": "To be", "model_a": "tiny-gpt", "model_b": "tiny-char-gpt", "model_c": "",
            "blind": True, "max_new_tokens": 12, "temperature": 0.5, "seed": 3}
    listed = {"tiny-gan", "tiny-diffusion", "tiny-vae-4d", "tiny-gpt", "tiny-char-gpt"}
    for values in (digits, text):
        state = parse_query(dict(parse_qsl(build_query("compare", values))), lambda tab, param: listed)
        assert state.tab == "compare" and state.run and not state.notices
        assert state.values == {k: v for k, v in values.items() if v != ""}
    state = parse_query({"tab": "compare", "gan": "../../etc", "per_digit": "11"}, lambda tab, param: listed)
    assert {n.name: n.reason for n in state.notices} == {"gan": "unknown_model", "per_digit": "out_of_range"}
