"""Case lines at the edges of the eval contract (nesting, lone surrogates) through both CLIs:
one output line per input line, the same bytes from Go and Python, and the run goes on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLAGS = {
    "flags": {
        "echo": {
            "state": "ENABLED",
            "variants": {"\ufffd": "replacement", "x": "x"},
            "defaultVariant": "x",
            "targeting": {"var": "s"},
        },
        "obj": {"state": "ENABLED", "variants": {"v": {"k": 1}}, "defaultVariant": "v"},
    }
}


def nested(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


ARRAYS_2000 = "[" * 2000 + "]" * 2000
LINES = [
    # the line is level 1, context level 2: 62 more levels fit, 63 do not
    '{"flag":"echo","type":"string","default":"d","context":{"deep":' + nested(62) + "}}",
    '{"flag":"echo","type":"string","default":"d","context":{"deep":' + nested(63) + "}}",
    '{"flag":"obj","type":"object","default":' + nested(340) + "}",
    '{"flag":"echo","type":"string","default":"d","context":{"deep":'
    + "[" * 2000
    + "]" * 2000
    + "}}",
    '{"flag":"echo","type":"string","default":"d","context":{"s":"\\ud800"}}',
    '{"flag":"ghost","type":"string","default":"\\udfff!"}',
    '{"flag":"echo","type":"string","default":"d","context":{"s":"\\ud83d\\ude00"}}',
    '{"flag":"obj","type":"object","default":{}}',
    # a number beyond the double range makes the member bad, even under a replaced key
    '{"flag":"echo","type":"string","default":"d","context":{"s":1e400,"s":"x"}}',
    '{"flag":"echo","type":"string","default":"d","context":{"l":[1e999],"l":0,"t":"\\ud800"}}',
    '{"flag":"echo","type":"string","default":"d","context":{"s":"x"},"context":{"s":"\\ufffd"}}',
]


def test_edge_lines_same_in_go_and_python(go_cli: Path, tmp_path: Path) -> None:
    ff = tmp_path / "flags.json"
    ff.write_text(json.dumps(FLAGS))
    cf = tmp_path / "cases.jsonl"
    cf.write_text("\n".join(LINES) + "\n")
    args = ["eval", "--flags", str(ff), "--cases", str(cf), "--now", "1767225600"]
    go = subprocess.run([str(go_cli), *args], capture_output=True, check=False)
    py = subprocess.run([sys.executable, "-m", "flagsync", *args], capture_output=True, check=False)
    assert go.returncode == py.returncode == 1  # some lines are bad cases
    assert py.stdout == go.stdout
    out = [json.loads(x) for x in py.stdout.decode().splitlines()]
    assert len(out) == len(LINES)
    assert out[0]["reason"] == "DEFAULT"  # 64 levels: evaluated
    for i in (1, 2, 3):  # deeper: a bad case, and the run goes on
        assert (out[i]["reason"], out[i]["errorCode"], out[i]["value"]) == (
            "ERROR",
            "GENERAL",
            None,
        )
    assert (out[4]["variant"], out[4]["value"]) == ("\ufffd", "replacement")  # lone -> U+FFFD
    assert (out[5]["errorCode"], out[5]["value"]) == ("FLAG_NOT_FOUND", "\ufffd!")
    assert out[6]["reason"] == "ERROR"  # a valid pair is one character: no such variant
    assert out[7]["value"] == {"k": 1}
    assert out[8]["errorCode"] == out[9]["errorCode"] == "GENERAL"
    assert out[10]["variant"] == "\ufffd"  # a repeated line member: the last one counts
    assert b"bad case" in py.stderr and b"bad case" in go.stderr
