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
