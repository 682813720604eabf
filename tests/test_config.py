"""chainsignals.toml is read strictly: a misspelt key or a value of the wrong type is refused in one line
naming the file, the table and key, and the nearest known name; every default is declared once."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from flows.config import DEFAULT_CONFIG, ConfigError, ConfigFile, load_rule_file, load_settings
from tests.helpers import CHAINSIGNALS
from transforms.signals import DEFAULT_WEIGHTS


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch):
    for var in (
        "CHAINSIGNALS_CONFIG",
        "CHAINSIGNALS_WAREHOUSE",
        "CHAINSIGNALS_LANDING",
        "CHAINSIGNALS_LAKE",
        "CHAINSIGNALS_STABLE_SECONDS",
    ):
        monkeypatch.delenv(var, raising=False)


def _refusal(tmp_path: Path, old: str, new: str) -> str:
    """The one-line refusal of the default config with `old` replaced by `new`."""
    text = DEFAULT_CONFIG.read_text()
    assert old in text
    path = tmp_path / "typo.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # The two typos: both loaded silently, and the run used 0.05 and 5.
        (
            "max_rejected_share = 0.05",
            "max_rejected_shares = 0.50",
            "[ingest] max_rejected_shares is not a known key (did you mean max_rejected_share?)",
        ),
        (
            "top_strikes = 5",
            "top_strike = 9",
            "[positioning] top_strike is not a known key (did you mean top_strikes?)",
        ),
        # At the top level (before any table) the nearest name is looked for in every table.
        (
            "[paths]",
            "top_strike = 9\n\n[paths]",
            "top_strike is not a known table or key (did you mean [positioning] top_strikes?)",
        ),
        (
            "[positioning]",
            "[positionning]",
            "positionning is not a known table or key (did you mean [positioning]?)",
        ),
        # A key in the wrong table is pointed at the table that has it.
        (
            "[outcomes]\n",
            "[outcomes]\nmax_symbols = 3\n",
            "[outcomes] max_symbols is not a known key (did you mean [report] max_symbols?)",
        ),
        (
            "trend_sma_30 = 10",
            "trend_sma30 = 10",
            "[signals.weights] trend_sma30 is not a known key (did you mean trend_sma_30?)",
        ),
        (
            'when = "close < call_wall',
            'whenn = "close < call_wall',
            "rule 'call_breakout' ([[rules]] #1): whenn is not a known key (did you mean when?)",
        ),
        (
            'strike_filter = "strike >= bb_lower',
            'strike_filtre = "strike >= bb_lower',
            "rule 'protective_put' ([[rules]] #2): strike_filtre is not a known key (did you mean strike_filter?)",
        ),
        ("[report]\n", '[report]\ncolour = "blue"\n', "[report] colour is not a known key"),
    ],
)
def test_a_misspelt_key_is_refused_naming_it_and_the_nearest_known_name(tmp_path, old, new, expected):
    assert _refusal(tmp_path, old, new) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "top_strikes = 5",
            'top_strikes = "9"',
            "[positioning] top_strikes = '9': input should be a valid integer",
        ),
        (
            "block_size = 1_000",
            "block_size = 1.5",
            "[flow] block_size = 1.5: input should be a valid integer",
        ),
        (
            "risk_free_rate = 0.04",
            'risk_free_rate = "4%"',
            "[market] risk_free_rate = '4%': input should be a valid number",
        ),
        (
            "max_rejected_share = 0.05",
            "max_rejected_share = true",
            "[ingest] max_rejected_share = True: input should be a valid number",
        ),
        (
            'on_short_chain = "warn"',
            'on_short_chain = "warm"',
            "[ingest] on_short_chain = 'warm': input should be 'warn' or 'fail'",
        ),
        (
            "top_strikes = 5",
            "top_strikes = 0",
            "[positioning] top_strikes = 0: input should be greater than 0",
        ),
        ("gamma = 10", 'gamma = "high"', "[signals.weights] gamma = 'high': input should be a valid number"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(tmp_path, old, new, expected):
    assert _refusal(tmp_path, old, new) == expected


def test_an_empty_config_has_the_defaults_the_code_used_before(tmp_path):
    """The values load_settings, Settings and INGEST_DEFAULTS used to write out, by hand."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    s = load_settings(empty, warehouse=tmp_path / "wh")
    assert (s.benchmark, s.calendar, s.risk_free_rate) == ("SPY", "XNYS", 0.04)
    assert (
        s.max_rejected_share,
        s.min_rows_for_limit,
        s.batch_rows,
        s.max_file_bytes,
        s.stable_seconds,
        s.min_chain_share,
        s.on_short_chain,
    ) == (0.05, 50, 4_000_000, 2_147_483_648, 2.0, 0.5, "warn")
    assert (s.top_strikes, s.block_notional, s.block_size) == (5, 1_000_000.0, 1_000)
    assert (s.bullish_at, s.bearish_at, s.pcr_history_sessions, s.history_years) == (20.0, -20.0, 60, 2)
    # An absent [signals.weights] meant the score's own weights; they are now spelt out.
    assert s.weights == DEFAULT_WEIGHTS
    assert (s.stock_horizon_sessions, s.min_risk_reward, s.report_max_symbols) == (10, 0.0, 100)
    assert s.rules == () and s.lake_location == ""
    assert (s.warehouse, s.landing) == ((tmp_path / "wh").resolve(), (tmp_path / "wh" / "landing").resolve())
    assert isinstance(s.block_notional, float) and isinstance(s.stable_seconds, float)


def test_the_bundled_config_states_exactly_the_models_defaults():
    """chainsignals.toml shows every setting with its default; the models are where the defaults live."""
    stated = tomllib.loads(DEFAULT_CONFIG.read_text())
    stated.pop("rules")
    assert stated == ConfigFile().model_dump(exclude={"rules"})


def test_a_rule_files_misspelt_key_is_refused(tmp_path):
    settings = load_settings(DEFAULT_CONFIG)
    rules = tmp_path / "mine.toml"
    rules.write_text(
        "[[rules]]"
        + DEFAULT_CONFIG.read_text()
        .split("\n[[rules]]", 1)[1]
        .replace('trigger_direction = "above"', 'trigger_directon = "above"', 1)
    )
    with pytest.raises(ConfigError) as err:
        load_rule_file(rules, settings)
    assert str(err.value) == (
        f"{rules}: rule 'call_breakout' ([[rules]] #1): trigger_directon is not a known key "
        "(did you mean trigger_direction?)"
    )
    rules.write_text(
        "[ideas]\nmin_risk_reward = 2\n\n"
        + rules.read_text().replace("trigger_directon", "trigger_direction")
    )
    assert {r.min_risk_reward for r in load_rule_file(rules, settings)} == {2.0}


def test_the_cli_refuses_a_misspelt_key_in_one_line_with_exit_code_2(tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("top_strikes = 5", "top_strike = 9"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINSIGNALS_")}
    done = subprocess.run(
        [str(CHAINSIGNALS), "status", "--config", str(config), "--warehouse", str(tmp_path / "wh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {config}: [positioning] top_strike is not a known key (did you mean top_strikes?)"
    )
    assert done.stdout == ""
