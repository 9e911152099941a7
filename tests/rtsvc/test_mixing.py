"""Speaker mix parsing: static weights (convex / linear) and dynamic mix tracks with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.mixing import load_mix_track, parse_static_mix, resolve_speaker, validate_track

SPK = ("alto", "tenor", "bass")


def test_speaker_by_name_or_id_and_unknown_lists_the_real_ones():
    assert resolve_speaker("tenor", SPK) == "tenor" and resolve_speaker(2, SPK) == "bass" and resolve_speaker("0", SPK) == "alto"
    with pytest.raises(ParameterError, match=r"'soprano' does not exist.*0=alto, 1=tenor, 2=bass"):
        resolve_speaker("soprano", SPK)
    with pytest.raises(ParameterError, match="does not exist"):
        resolve_speaker(3, SPK)


def test_static_mix_is_convex_by_default_and_linear_on_request():
    assert parse_static_mix("alto=1,tenor=3", SPK) == (("alto", 0.25), ("tenor", 0.75))
    assert parse_static_mix("alto=1, 1=3", SPK, mode="linear") == (("alto", 1.0), ("tenor", 3.0))


@pytest.mark.parametrize("text, message", [
    ("alto", "not name=weight"), ("alto=x", "not a number"), ("alto=-1", ">= 0"), ("alto=nan", "finite"),
    ("alto=0,tenor=0", "sum to 0"), ("alto=1,0=1", "twice"), ("soprano=1", "does not exist"), (" , ", "empty"),
])
def test_static_mix_errors(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_static_mix(text, SPK)


GOOD = {"alto": [[0, 0.5, 1, 0], [0.5, 1, 0, 0]], "tenor": [[0, 1, 0, 1]], "2": [[0.0, 1.0, 0.0, 0.0]]}


def test_track_weights_ramp_and_are_convex_per_frame():
    track = validate_track(GOOD, SPK, "t")
    w = track.frame_weights(100)
    assert w.shape == (100, 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert w[0, 0] == pytest.approx(1.0) and w[0, 1] == pytest.approx(0.0)  # alto 1 -> 0, tenor 0 -> 1
    assert w[25, 0] == pytest.approx(0.5 / (0.5 + 0.25))  # alto 0.5, tenor 0.25 before normalising
    assert w[80, 1] == pytest.approx(1.0) and np.all(w[:, 2] == 0)
    zero = validate_track({"alto": [[0, 1, 0, 0]], "tenor": [[0, 1, 0, 0]], "bass": [[0, 1, 0, 0]]}, SPK, "t")
    np.testing.assert_allclose(zero.frame_weights(10), 1.0 / 3.0)  # all-zero frames: equal weights
    linear = validate_track(GOOD, SPK, "t", mode="linear").frame_weights(100)
    assert linear[25, 0] == pytest.approx(0.5) and linear[25, 1] == pytest.approx(0.25)


@pytest.mark.parametrize("change, message", [
    ({"alto": [[0.1, 1, 1, 1]]}, "first segment must start at 0"),
    ({"alto": [[0, 0.9, 1, 1]]}, "last segment must end at 1"),
    ({"alto": [[0, 0.5, 1, 1], [0.6, 1, 1, 1]]}, "must be chained"),
    ({"alto": [[0, 1.5, 1, 1]]}, r"fractions of the file in \[0, 1\]"),
    ({"alto": [[0, 0, 1, 1], [0, 1, 1, 1]]}, "must be before t_end"),
    ({"alto": [[0, 1, -1, 1]]}, "weights must be >= 0"),
    ({"alto": [[0, 1, 1]]}, "expected 4 numbers"),
    ({"alto": []}, "non-empty list"),
    ({"soprano": [[0, 1, 1, 1]]}, "does not exist"),
    ({"0": [[0, 1, 1, 1]]}, "listed twice"),
])
def test_track_rule_violations_say_what_is_wrong(change, message):
    raw = dict(GOOD)
    raw.update(change)
    with pytest.raises(RtsvcError, match=message):
        validate_track(raw, SPK, "track.json")


def test_every_speaker_must_be_listed_and_single_speaker_voices_refuse_tracks():
    with pytest.raises(RtsvcError, match="missing bass"):
        validate_track({"alto": GOOD["alto"], "tenor": GOOD["tenor"]}, SPK, "t")
    with pytest.raises(RtsvcError, match="2 or more speakers"):
        validate_track({"solo": [[0, 1, 1, 1]]}, ("solo",), "t")


def test_track_files_json_and_spkmix_py_read_as_data(tmp_path):
    j = tmp_path / "mix.json"
    j.write_text(json.dumps(GOOD))
    assert load_mix_track(j, SPK).speakers == SPK
    py = tmp_path / "spkmix.py"
    py.write_text("# so-vits-svc style\nspk_mix_map = {\n 0: [[0., 0.5, 1, 0.5], [0.5, 1, 0.5, 1]],\n"
                  " 1: [[0., 1, 1, 0]],\n 2: [[0., 1., 0., 0.]]\n}\n")
    assert load_mix_track(py, SPK).segments[0].shape == (2, 4)
    evil = tmp_path / "evil.py"
    evil.write_text("import os\nspk_mix_map = {0: [[0, 1, 1, 1]], 1: os.system('echo hi')}\n")
    with pytest.raises(RtsvcError, match="plain literal"):
        load_mix_track(evil, SPK)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RtsvcError, match="not valid JSON"):
        load_mix_track(bad, SPK)
    with pytest.raises(RtsvcError, match="not found"):
        load_mix_track(tmp_path / "nope.json", SPK)
