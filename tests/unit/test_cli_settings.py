"""Bad setting values given on the command line: one line naming the field and exit 1, no traceback."""

from __future__ import annotations

import pytest

from rtscore.cli import main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["scorer", "serve", "--model", "m=/none.zip", "--workers", "0"], "workers"),
        (["scorer", "serve", "--model", "m=/none.zip", "--cpu-latency-us", "-1"], "cpu_latency_us"),
        (
            ["extractor", "serve", "--port", "0", "--scorers", "127.0.0.1:1", "--model", "fraud:champion",
             "--cpu-latency-us", "-1"],
            "cpu_latency_us",
        ),
        (
            ["extractor", "serve", "--port", "0", "--scorers", "127.0.0.1:1", "--model", "fraud:champion",
             "--shadow-fraction", "2"],
            "shadow_fraction",
        ),
        (
            ["extractor", "serve", "--port", "0", "--scorers", "127.0.0.1:1", "--workers", "2"],
            "(settings)",  # workers with in-process velocity: each would count only its own transactions
        ),
        (["shadow", "run", "--registry", "127.0.0.1:1", "--batch-size", "0"], "batch_size"),
        (["shadow", "run", "--registry", "127.0.0.1:1", "--threshold", "1.5"], "threshold"),
        (["registry", "serve", "--port", "70000"], "port"),
    ],
)  # fmt: skip
def test_a_refused_setting_is_one_line_naming_it(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"rtscore {argv[0]}: bad settings: {named}: "), err


def test_an_extractor_flag_left_out_falls_back_to_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # how `--workers` hands a worker its settings; a flag's own default would hide the variable
    monkeypatch.setenv("RTSCORE_EXTRACTOR_SHADOW_FRACTION", "2")
    argv = ["extractor", "serve", "--port", "0", "--scorers", "127.0.0.1:1"]
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith("rtscore extractor: bad settings: shadow_fraction: ")
    monkeypatch.setenv("RTSCORE_EXTRACTOR_SHADOW_FRACTION", "0.5")
    assert main([*argv, "--shadow-fraction", "3"]) == 1  # and a flag given wins
    assert "shadow_fraction: Input should be less than or equal to 1" in capsys.readouterr().err
