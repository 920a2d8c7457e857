"""The Lab: runs in lock-step (same weights, same batches), only the chosen setting differs, bounded,
owned by its visitor, queued behind other visitors' jobs, stopped when its visitor leaves, saved."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from aigc_demo.errors import UserError
from aigc_demo.services.job_config import FinetuneConfig
from aigc_demo.services.jobs import FinetuneManager
from aigc_demo.services.lab import LabLimits, LabService
from aigc_demo.training.finetune import FinetuneSettings, JobRequest
from aigc_demo.training.lab import build_runs, run_lab
from aigc_demo.training.lab_spec import LabSpec, default_spec
from tests.factories import make_tiny_corpus, make_tiny_digit_models, make_tiny_mnist

A, B = "session-aaaa", "session-bbbb"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("labdata")
    models = make_tiny_digit_models(root / "weights")
    return {"data_dir": str(make_tiny_mnist(root / "mnist")),
            "text": str(make_tiny_corpus(root / "corpus") / "input.txt"),
            "classifier": str(models["tiny-classifier"]), "weights": str(root / "weights"), "summary": "tiny"}


class Events(list):
    def put(self, event: dict) -> None:
        self.append(event)


def _request(spec: LabSpec, data: dict[str, str], out: Path) -> JobRequest:
    return JobRequest(job_id="t", family="lab", base="", base_title="lab", data={}, data_summary="tiny",
                      settings=FinetuneSettings(steps=spec.steps), out_dir=str(out), cpu=True,
                      extra={"lab": spec.public(), **data})


def test_each_run_differs_only_in_the_chosen_setting() -> None:
    for family, vary, values in (("vae", "optimizer", ["adam", "sgd", "rmsprop"]), ("gan", "loss", ["nsgan", "wgan-gp"]),
                                 ("vae", "recon", ["bce", "mse"]), ("gpt", "label_smoothing", ["0", "0.1"]),
                                 ("diffusion", "prediction", ["epsilon", "v_prediction"]), ("vae", "lr", ["1e-3", "1e-4"])):
        runs = LabSpec(family=family, vary=vary, values=values).check().runs()
        assert len(runs) == len(values) and len({r["label"] for r in runs}) == len(values)
        for run in runs[1:]:
            differs = {k for k in run["settings"] if run["settings"][k] != runs[0]["settings"][k]}
            assert differs == {vary}, (family, vary, differs)
    assert LabSpec(family="vae", vary="lr", values=["1e-3", "0.0001"]).check().runs()[1]["settings"]["lr"] == 1e-4


def test_labs_are_bounded_with_clear_messages() -> None:
    bad = [(dict(values=["adam"]), "2 or 3 runs"), (dict(values=["adam", "sgd", "rmsprop", "adam"]), "2 or 3 runs"),
           (dict(values=["adam", "adam"]), "different value"), (dict(vary="loss"), "can vary"),
           (dict(family="lora"), "trains one of"), (dict(steps=5000), "between 1 and 1000"),
           (dict(steps=0), "between 1 and"), (dict(vary="lr", values=["nan", "1e-3"]), "number from"),
           (dict(vary="lr", values=["0", "1e-3"]), "number from"), (dict(vary="lr", values=["5", "1e-3"]), "number from"),
           (dict(batch_size=10_000), "batch size"), (dict(values=["adam", "../../etc"]), "one of")]
    for change, message in bad:
        with pytest.raises(UserError, match=message):
            replace(LabSpec(), **change).check()


def test_runs_start_from_the_same_weights_and_see_the_same_batches(data, tmp_path) -> None:
    from accelerate import Accelerator

    from aigc_demo.training.lab import _step_all

    for family, vary, values in (("gan", "loss", ["nsgan", "wgan-gp"]), ("vae", "optimizer", ["adam", "sgd"]),
                                 ("gpt", "optimizer", ["adam", "sgd"])):
        spec = LabSpec(family=family, vary=vary, values=values, steps=4, batch_size=8).check()
        runs = build_runs(spec, data, tmp_path / family, Accelerator(cpu=True), cpu=True)
        model = "G" if family == "gan" else "model"
        first, second = (getattr(r.task, model).state_dict() for r in runs)
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
        for step in range(4):
            _step_all(runs, spec, step)
        seen = [r.feed.seen if r.feed is not None else r.seen for r in runs]
        assert len(seen[0]) == 4 and len(set(seen[0])) == 4  # a new batch every step...
        assert seen[0] == seen[1], family  # ...the same one in every run
        after = [getattr(r.task, model).state_dict() for r in runs]
        assert any(not torch.equal(after[0][k], after[1][k]) for k in after[0]), "the setting changed nothing"


def test_a_lab_reports_every_run_at_the_same_steps_and_exports_each(data, tmp_path) -> None:
    spec = LabSpec(family="vae", vary="optimizer", values=["adam", "sgd"], steps=12, eval_every=4, sample_every=6,
                   log_every=2, batch_size=16).check()
    events = Events()
    result = run_lab(_request(spec, data, tmp_path / "out"), events, threading.Event())
    assert result.steps_done == 12 and not result.stopped
    lab = [e for e in events if e["type"] == "lab"]
    for kind, steps in (("metric", [0, 4, 8, 12]), ("losses", [2, 4, 6, 8, 10, 12]), ("preview_png", [6, 12])):
        per_run = [[e["step"] for e in lab if e["run"] == run and kind in e] for run in (0, 1)]
        assert per_run == [steps, steps], kind
    metrics = [[e["metric"] for e in lab if e["run"] == run and "metric" in e] for run in (0, 1)]
    assert metrics[0][0] == metrics[1][0] and metrics[0][-1] != metrics[1][-1]  # same start, different end
    assert all(m < 0 for m in metrics[0])  # an ELBO in nats
    for run in (0, 1):
        assert (tmp_path / "out" / f"run-{run}" / "model.safetensors").is_file()


def test_a_diverging_run_stops_and_the_other_goes_on(data, tmp_path) -> None:
    spec = LabSpec(family="vae", vary="lr", values=["1", "0.001"], steps=8, eval_every=4, sample_every=8,
                   log_every=2, batch_size=8).check()
    events = Events()
    run_lab(_request(spec, data, tmp_path / "out"), events, threading.Event())
    lab = [e for e in events if e["type"] == "lab"]
    assert [e["step"] for e in lab if e["run"] == 1 and "metric" in e] == [0, 4, 8]
    assert all(e["run"] == 0 for e in lab if e.get("diverged"))  # an lr of 1 may blow up: never the other run
    if any(e.get("diverged") for e in lab):
        assert not (tmp_path / "out" / "run-0").exists()  # no NaN weights to save
    assert (tmp_path / "out" / "run-1" / "model.safetensors").is_file()


@pytest.fixture
def service(tmp_path, data):
    config = FinetuneConfig(runs_dir=str(tmp_path / "runs"), user_models_dir=str(tmp_path / "user"), job_threads=1,
                            max_steps=500)
    manager = FinetuneManager(config)
    service = LabService(manager, data["weights"], LabLimits(max_minutes=2))
    yield service
    manager.shutdown()


def _wait(service: LabService, session: str, lab_id: str, until: tuple[str, ...], timeout: float = 150) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = service.view(session, lab_id)
        if view["status"] in until or time.monotonic() > deadline:
            return view
        time.sleep(0.3)


def test_a_lab_job_belongs_to_its_visitor_queues_and_saves_a_run(service, data) -> None:
    spec = LabSpec(family="gan", vary="loss", values=["nsgan", "hinge"], steps=6, eval_every=3, sample_every=3,
                   log_every=1, batch_size=8)
    lab_id = service.start(A, spec)
    with pytest.raises(UserError, match="No such job"):
        service.view(B, lab_id)  # another visitor: not found
    with pytest.raises(UserError, match="already have a job"):
        service.start(A, spec)
    other = service.start(B, spec)  # behind A's lab in the one training slot
    queued = service.view(B, other)
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    assert "position 1" in queued["message"]
    view = _wait(service, A, lab_id, ("done", "failed", "stopped"))
    assert view["status"] == "done", view["error"]
    assert [r["label"] for r in view["runs"]] == ["A: non-saturating", "B: hinge"]
    for run in view["runs"]:
        assert [p["step"] for p in run["metric"]] == [0, 3, 6] and all(0 <= p["value"] <= 1 for p in run["metric"])
        assert [p["step"] for p in run["loss"]] == [1, 2, 3, 4, 5, 6]
        assert [s["step"] for s in run["samples"]] == [3, 6] and Path(run["samples"][0]["image"]).is_file()
    public = service.public(view)
    assert "image" not in str(public["runs"][0]["samples"]) and view["runs"][1]["settings"]["loss"] == "hinge"
    saved = service.save(A, lab_id, 1, "hinge-gan")
    assert (saved / "model.safetensors").is_file() and service.view(A, lab_id)["saved"] == ["hinge-gan"]
    with pytest.raises(UserError, match="No such job"):
        service.save(B, lab_id, 1, "stolen")
    service.stop(B, other)
    assert _wait(service, B, other, ("stopped", "done", "failed"))["status"] in ("stopped", "done")


def test_a_lab_whose_visitor_left_is_stopped(service) -> None:
    spec = LabSpec(family="vae", vary="optimizer", values=["adam", "sgd"], steps=400, batch_size=8)
    lab_id = service.start(A, spec)
    assert _wait(service, A, lab_id, ("running",), 60)["status"] == "running"
    assert service.stop_abandoned(now=time.monotonic() + 60) == []  # asked about a moment ago
    assert service.stop_abandoned(now=time.monotonic() + service.limits.idle_s + 1) == [lab_id]
    view = _wait(service, A, lab_id, ("stopped", "done", "failed"), 60)
    assert view["status"] == "stopped" and view["step"] < 400


def test_the_estimate_is_measured_before_start(service) -> None:
    from aigc_demo.services.finetune_probe import Prober

    prober = Prober()
    spec = default_spec("vae")
    with pytest.raises(LookupError):
        service.estimate(spec, prober, measure_now=False)
    figures = service.estimate(spec, prober)
    assert figures["runs"] == 2 and figures["steps"] == 200 and figures["rounds_timed"] >= 2
    assert 0 < figures["seconds_per_round"] < 30 and figures["total_s"] > 200 * figures["seconds_per_round"]
    assert service.estimate(spec, prober, measure_now=False) == figures  # cached
