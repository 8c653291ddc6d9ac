"""Hostile input and faults: exit 2 with one line, never a traceback; outputs whole;
ordinary file modes (issue 12; the table in docs/reliability.md)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_checks import one_error_line
from typer.testing import CliRunner

from sim import cli
from sim.cli import app
from sim.files import write_atomic

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _what_if(tmp_path: Path, text: str | None = None) -> Path:
    source = text or (ROOT / "scenarios/article-force-tls.yaml").read_text()
    path = tmp_path / "w.yaml"
    path.write_text(source.replace("../topology/", f"{ROOT}/topology/"))
    return path


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    line = one_error_line(runner.invoke(app, ["validate", str(path)]))
    assert "w.yaml: byte 9" in line and "not UTF-8" in line


def test_a_symlink_loop_among_referenced_files(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    path = tmp_path / "w.yaml"
    path.write_text("name: w\ntopology: a.yaml\nremotes: a.yaml\n")
    line = one_error_line(runner.invoke(app, ["validate", str(path)]))
    assert "w.yaml: topology" in line


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("rate_per_hour: 600", "rate_per_hour: .inf", "rate_per_hour"),
        ("rate_per_hour: 600", "rate_per_hour: .nan", "rate_per_hour"),
        ("duration: 4d", "duration: .inf", "duration"),
        ("duration: 4d", "duration: 40000d", "duration"),
        ("rate_per_hour: 600", "rate_per_hour: 1e12", "rate_per_hour"),
    ],
)
def test_numbers_must_be_finite_and_bounded(tmp_path, old, new, field):
    text = (ROOT / "scenarios/article-force-tls.yaml").read_text().replace(old, new)
    line = one_error_line(runner.invoke(app, ["validate", str(_what_if(tmp_path, text))]))
    assert field in line


def test_sweep_mistakes(tmp_path):
    experiment = ROOT / "scenarios/article-policy-sweep.yaml"
    line = one_error_line(runner.invoke(app, ["sweep", str(experiment), "--scheduler", "localhost"]))
    assert "--scheduler = 'localhost'" in line and "tcp://host:8786" in line
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_error_line(
        runner.invoke(app, ["sweep", str(experiment), "--out", str(blocker / "sub"), "--workers", "1"])
    )
    assert "cannot write" in line or "Not a directory" in line
    adaptive = tmp_path / "e.yaml"
    adaptive.write_text(
        f"name: e\nbase: {ROOT}/scenarios/article-baseline.yaml\n"
        "replications: {metric: out_ndr_rat, half_width: 0.01}\n"
    )
    line = one_error_line(runner.invoke(app, ["validate", str(adaptive)]))
    assert "out_ndr_rat" in line and "not a summary metric" in line


def test_result_files_have_ordinary_modes(tmp_path):
    previous = os.umask(0o022)
    try:
        args = ["run", str(ROOT / "scenarios/article-baseline.yaml"), "--out", str(tmp_path), "-q", "--no-report"]
        assert runner.invoke(app, args).exit_code == 0
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_an_internal_error_is_one_line_and_exit_1_unless_debugging(monkeypatch, capsys):
    def broken():
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.setattr(cli.sys, "argv", ["tlssim", "run", "x.yaml"])
    monkeypatch.setitem(cli.DEBUG, "on", False)
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "internal error (a bug in tlssim): ZeroDivisionError: division by zero" in err
    assert "Traceback" not in err
    monkeypatch.setitem(cli.DEBUG, "on", True)
    with pytest.raises(ZeroDivisionError):
        cli.main()


def _run(out: Path, *extra: str):
    return runner.invoke(app, ["run", str(ROOT / "scenarios/article-baseline.yaml"), "--out", str(out), "-q", *extra])


def test_a_failure_part_way_leaves_the_previous_result_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _run(out, "--no-report").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(result, folder, extra=()):
        (folder / "report.md").write_text("half")

        def fill(path):
            path.write_text("<html>half")
            raise OSError(28, "No space left on device")  # as a write() reports it: no file name

        write_atomic(folder / "report.html", fill)

    monkeypatch.setattr("sim.report.page.write_report", disk_full)
    line = one_error_line(_run(out, "--seed", "7"))
    assert "cannot write results (report.html): No space left on device; the previous result" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_a_second_run_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    assert _run(out).exit_code == 0
    assert (out / "report.html").exists()
    assert _run(out, "--no-report").exit_code == 0
    assert not (out / "report.html").exists()  # nothing stale from the run before
    assert (out / "manifest.json").exists()


def test_a_folder_that_is_not_a_result_is_refused_and_untouched(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    line = one_error_line(_run(home))
    assert f"--out = {home}: exists and is not a tlssim result folder (no manifest.json)" in line
    assert [p.name for p in home.iterdir()] == ["thesis.tex"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert "exists and is not a tlssim result folder" in one_error_line(_run(a_file))
    assert a_file.read_text() == "x"
    monkeypatch.chdir(home)
    (home / "thesis.tex").unlink()
    line = one_error_line(runner.invoke(app, ["run", str(ROOT / "scenarios/article-baseline.yaml"), "--out", "."]))
    assert "is the current folder or holds it" in line


def test_compare_refuses_a_folder_that_is_not_a_comparison(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    base = ROOT / "scenarios/article-baseline.yaml"
    result = runner.invoke(app, ["compare", str(base), str(base), "--out", str(notes)])
    assert "exists and is not a tlssim result folder (no compare.csv)" in one_error_line(result)
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]
