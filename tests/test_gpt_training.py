"""Training, export, evaluation and the CLI of the small GPTs, on tiny models and tiny corpora."""

from __future__ import annotations

import csv
import json
import math

import pytest

torch = pytest.importorskip("torch")

from aigc_demo.modelcard import read_card_metadata  # noqa: E402
from aigc_demo.training import gpt as gpt_train  # noqa: E402

TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n"
        "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 60
TINY = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--cpu",
        "--no-progress-bar", "--sample-tokens", "30", "--checkpoint-every", "0"]


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_lr_schedule_warmup_then_cosine():
    from aigc_demo.training.schedule import lr_factor

    assert lr_factor(0.0, 0, "cosine", 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(0.0, 10, "cosine", 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.5, 500, "cosine", 10, 0.1) == pytest.approx(0.55)
    assert lr_factor(1.0, 1000, "cosine", 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(3.0, 3000, "cosine", 10, 0.1) == pytest.approx(0.1)  # past the end: stays at min
    assert lr_factor(2.0, 3000, "cosine", 10, 0.1) == pytest.approx(0.1)  # not back up a second cosine


def test_tiny_char_training_lowers_loss_and_exports(tmp_path):
    data = tmp_path / "play.txt"
    data.write_text(TEXT)
    out = tmp_path / "run"
    code = gpt_train.main(["--config", "shakespeare", "--data", str(data), "--out", str(out), "--steps", "80",
                           "--batch-size", "16", "--lr", "3e-3", "--warmup-steps", "5", "--log-every", "10",
                           "--eval-every", "20", "--eval-batches", "4", "--dropout", "0", *TINY])
    assert code == 0
    rows = list(csv.DictReader((out / "losses.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == list(range(10, 81, 10))
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < first - 1.0  # from ~3.3 (uniform over the characters) to well below
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    assert next(model.parameters()).dtype == torch.float16  # stored in fp16
    assert model.config.n_layer == 2 and model.config.n_positions == 32
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.decode(tok("ROMEO:\n")["input_ids"]) == "ROMEO:\n"
    card = read_card_metadata(out)["aigc_gallery"]
    metric = card["metrics"][0]
    assert metric["unit"] == "nats/char" and 0 < metric["value"] < 3.0 and card["tab"] == "text"
    info = json.loads((out / "training_info.json").read_text())
    assert info["steps_done"] == 80 and info["val_tokens"] > 0 and info["metrics"] == card["metrics"]

    # eval reprints the same metric (measured again) and rewrites the card
    from aigc_demo.evaluation import eval_gpt

    measured = eval_gpt.evaluate_folder(str(out), str(data), device="cpu")
    assert measured.nats_per_token == pytest.approx(metric["value"], abs=2e-3)
    assert read_card_metadata(out)["aigc_gallery"]["metrics"][0]["value"] == round(measured.nats_per_token, 4)


def test_progress_events_carry_train_and_val_loss(tmp_path):
    from aigc_demo.training.engine import run_training

    data = tmp_path / "play.txt"
    data.write_text(TEXT)
    gpt, train = gpt_train.parse_args(["--config", "shakespeare", "--data", str(data), "--out",
                                       str(tmp_path / "run"), "--steps", "6", "--log-every", "3",
                                       "--batch-size", "4", *TINY])
    events = []
    task = gpt_train.GPTTask(gpt, train)
    run_training(task, train, callback=events.append)
    from transformers.activations import NewGELUActivation

    # trained with the fused GELU and the fused AdamW (bench train: app/nanoGPT), the card's config unchanged
    assert not any(isinstance(m, NewGELUActivation) for m in task.model.modules())
    assert task.optimizer.optimizer.defaults["fused"] is True
    assert json.loads((tmp_path / "run" / "config.json").read_text())["activation_function"] == "gelu_new"
    assert {"loss", "val_loss", "lr"} <= set(events[0].losses)
    assert all(math.isfinite(e.losses["val_loss"]) for e in events)
    assert events[-1].done and isinstance(events[-1].preview, str)


def test_fused_gelu_is_gpt2s_function_and_fused_adamw_its_update():
    """The two speed-ups of GPTTask change the speed, not the numbers: same logits, same step."""
    from aigc_demo.models.gpt import GPTModelConfig, build_gpt, use_fused_gelu
    from aigc_demo.training.engine import make_optimizer

    torch.manual_seed(0)
    model = build_gpt(GPTModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, dropout=0.0, vocab_size=50),
                      bos_token_id=0, eos_token_id=None).eval()
    x = torch.randint(0, 50, (3, 16))
    with torch.no_grad():
        before = model(input_ids=x).logits
        assert use_fused_gelu(model) == 2 and use_fused_gelu(model) == 0  # one per block, then none left
        after = model(input_ids=x).logits
    assert model.config.activation_function == "gelu_new"
    assert torch.allclose(before, after, atol=1e-5)
    twins = [torch.nn.Parameter(torch.randn(8, 4)) for _ in range(2)]
    opts = [make_optimizer("adam", [p], 1e-2, weight_decay=0.1, fused=fused) for p, fused in zip(twins, (False, True))]
    assert opts[1].defaults["fused"] is True and not opts[0].defaults["fused"]
    twins[1].data.copy_(twins[0].data)
    start = twins[0].detach().clone()
    for _ in range(3):
        for p, opt in zip(twins, opts):
            p.grad = torch.ones_like(p) * 0.5
            opt.step()
    assert torch.allclose(twins[0], twins[1], atol=1e-6) and not torch.allclose(twins[0], start, atol=1e-3)


def test_python_bpe_dry_run_reports_bits_per_byte(tmp_path):
    src = tmp_path / "code"
    src.mkdir()
    for i in range(12):
        (src / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n\n\nclass C{i}:\n    pass\n" * 40)
    out = tmp_path / "run"
    assert gpt_train.main(["--config", "python", "--data", str(src), "--out", str(out), "--dry-run",
                           "--vocab-size", "300", *TINY]) == 0
    metrics = read_card_metadata(out)["aigc_gallery"]["metrics"]
    assert metrics[0]["unit"] == "bits/byte" and metrics[0]["value"] > 0
    assert read_card_metadata(out)["aigc_gallery"]["tab"] == "code"


def test_bad_data_is_refused_clearly(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        gpt_train.main(["--data", str(empty), "--out", str(tmp_path / "r"), *TINY])
    small = tmp_path / "small.txt"
    small.write_text("hi there\n")
    with pytest.raises(ValueError, match="too small"):
        gpt_train.main(["--data", str(small), "--out", str(tmp_path / "r"), *TINY])
