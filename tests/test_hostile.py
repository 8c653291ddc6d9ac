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

    def disk_full(result, folder, extra=(), helpers=0, painter=None):
        (folder / "report.md").write_text("half")

        def fill(path):
            path.write_text("<html>half")
            raise OSError(28, "No space left on device")  # as a write() reports it: no file name

        write_atomic(folder / "report.html", fill)

    monkeypatch.setattr("sim.report.page.write_report", disk_full)
    line = one_error_line(_run(out, "--seed", "7"))
    assert "cannot write results (report.html): No space left on device; the previous result" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # No temporary folder left behind; the hidden lock file of one writer per folder stays.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
def test_a_second_run_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    assert _run(out).exit_code == 0
    assert (out / "report.html").exists()
    assert _run(out, "--no-report").exit_code == 0
    assert not (out / "report.html").exists()  # nothing stale from the run before
    assert (out / "manifest.json").exists()


@pytest.mark.slow  # over a second: runs in CI (.ci/run)
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


# --------------------------------------------------------------------------- issue 21: names from data


@pytest.mark.parametrize(
    ("reference", "says"),
    [("x" * 5000 + ".yaml", "file name too long"), ("topo\0.yaml", "cannot hold a NUL byte")],
)
def test_a_referenced_file_name_no_file_system_holds_is_exit_2(tmp_path, reference, says):
    text = (ROOT / "scenarios/article-force-tls.yaml").read_text()
    text = text.replace("topology: ../topology/contoso-2003.yaml", f"topology: {reference!r}".replace("'", '"'))
    line = one_error_line(runner.invoke(app, ["validate", str(_what_if(tmp_path, text.replace("\0", "\\0")))]))
    assert "w.yaml: topology" in line and says in line


def test_a_valid_253_character_sender_domain_gets_its_tls_rpt_reports_written(tmp_path):
    label = "a" * 63
    domain = f"{label}.{label}.{label}.{'b' * 53}.example"  # 253 characters, labels <= 63
    assert len(domain) == 253
    text = (ROOT / "scenarios/mta-sts-testing-to-enforce.yaml").read_text().replace("woodgrovebank.com", domain)
    text = text.replace("run: {duration: 7d", "run: {duration: 1d")
    result = runner.invoke(app, ["run", str(_what_if(tmp_path, text)), "--out", str(tmp_path / "out"), "-q",
                                 "--no-report", "--no-exceptions"])  # fmt: skip
    assert result.exit_code == 0, result.output
    names = [p.name for p in (tmp_path / "out" / "tls-rpt" / "received").iterdir()]
    assert max(len(n.encode()) for n in names) <= 200
    long = [n for n in names if n.startswith(label)]
    assert long and len(set(long)) == len(long) and all(n.endswith(".json") for n in long)


def test_a_dollar_in_a_label_is_a_dollar_not_mathtext(tmp_path):
    import matplotlib.pyplot as plt

    import sim.experiment.plots  # noqa: F401  (sets the figures' text rules)

    for text in (r"$\frac{x$", "cost $x^$", r"$\badcommand$"):
        figure, axes = plt.subplots()
        axes.set_title(text)
        axes.set_xticks([0], [text])
        figure.savefig(tmp_path / "f.png")  # raised ValueError with mathtext on
        plt.close(figure)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("mx1.example.com", True),
        ("a.com\n", False),  # re's "$" matched before a trailing newline
        ("a" * 64 + ".com", False),  # a label is at most 63
        (".".join(["a" * 63] * 4) + ".com", False),  # 259 characters: at most 253
        (".".join(["a" * 63] * 3) + "." + "b" * 61, True),  # 253
    ],
)
def test_domain_names_are_dns_names(name, valid):
    from sim.vocabulary import is_domain

    assert is_domain(name) is valid


def test_probe_takes_a_plain_number_of_seconds_and_refuses_a_missing_out_folder(tmp_path):
    # Both are checked before any lookup: no network is touched.
    args = ["probe", "example.com", "--timeout", "2", "--out", str(tmp_path / "missing" / "r.yaml")]
    line = one_error_line(runner.invoke(app, args))
    assert "--out" in line and "does not exist" in line
    assert not (tmp_path / "missing").exists()
    line = one_error_line(runner.invoke(app, ["probe", "example.com", "--timeout", "2x", "--out", str(tmp_path)]))
    assert "--timeout = '2x'" in line
    line = one_error_line(runner.invoke(app, ["probe", "example.com", "--out", str(tmp_path)]))
    assert "a folder" in line


@pytest.mark.slow  # tracemalloc slows it to seconds: runs in CI (.ci/run)
def test_an_exchange_export_is_read_one_object_at_a_time(tmp_path):
    # 1,000 objects of 100 properties: the whole document tree costs about three times
    # what the values read do; the reader keeps one object's elements at a time.
    import tracemalloc
    import xml.etree.ElementTree as ET

    from sim.importers.exchange import read_clixml

    ns = "http://schemas.microsoft.com/powershell/2004/04"
    props = "".join(f'<S N="P{j}">v{j}</S>' for j in range(100))
    body = "".join(f'<Obj RefId="{i}"><TN RefId="{i}"><T>AcceptedDomain</T></TN><Props>{props}</Props></Obj>'
                   for i in range(1000))  # fmt: skip
    path = tmp_path / "accepted.xml"
    path.write_text(f'<Objs Version="1.1.0.1" xmlns="{ns}">{body}</Objs>')
    peaks = []
    for read in (lambda: ET.parse(path), lambda: read_clixml(path)):
        tracemalloc.start()
        read()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    whole_tree, streamed = peaks
    assert streamed < 0.5 * whole_tree
    assert len(read_clixml(path)) == 1000


# --------------------------------------------------------------------------- issue 21: one writer per folder


def test_a_second_sweep_on_a_folder_being_written_exits_2_naming_the_holder(tmp_path):
    from sim.files import folder_lock

    experiment = tmp_path / "small.yaml"
    experiment.write_text(
        f"name: small\nbase: {ROOT / 'scenarios/article-baseline.yaml'}\n"
        "overrides: {run.duration: 1h}\naxes: {policy: {baseline: {}}}\nreplications: 1\n"
    )
    out = tmp_path / "results"
    with folder_lock(out, wait=False):  # as a first sweep holds it
        line = one_error_line(runner.invoke(app, ["sweep", str(experiment), "--out", str(out)]))
    assert "--out" in line and f"being written by another tlssim (pid {os.getpid()})" in line
    assert not (out / "runs.jsonl").exists()
    assert runner.invoke(app, ["sweep", str(experiment), "--out", str(out)]).exit_code == 0  # free again


def test_concurrent_writers_of_one_folder_take_turns_and_leave_nothing_hidden(tmp_path):
    import threading
    import time

    from sim.files import swap_folder

    out = tmp_path / "out"
    (tmp_path / ".out.new-killed").mkdir()  # left by a writer killed part-way

    def writer(tag: str) -> None:
        def write(folder: Path) -> list[Path]:
            time.sleep(0.3)  # both are writing at once
            (folder / "manifest.json").write_text(tag)
            return [folder / "manifest.json"]

        swap_folder(out, write)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (out / "manifest.json").read_text() in ("a", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]  # the stale one removed too


# --------------------------------------------------------------------------- issue 21: work bounded before it starts


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        # 10 million messages an hour for ten years: refused from the file, not by running out of memory
        (("rate_per_hour: 600", "rate_per_hour: 10000000"), ("duration: 4d", "duration: 3650d"), "messages"),
    ],
)
def test_a_run_this_machine_cannot_hold_is_refused_before_it_starts(tmp_path, old, new, says):
    text = (ROOT / "scenarios/article-force-tls.yaml").read_text().replace(*old).replace(*new)
    path = _what_if(tmp_path, text)
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "out")]):
        line = one_error_line(runner.invoke(app, command))
        assert "~8.8e+11 messages" in line and "--i-know" in line and "rate_per_hour" in line
    assert not (tmp_path / "out").exists()
    assert runner.invoke(app, ["validate", str(path), "--i-know"]).exit_code == 0


def test_a_population_with_a_huge_mx_count_is_refused_by_validate(tmp_path):
    remotes = (ROOT / "topology/internet-2024.yaml").read_text()
    assert "mx_per_domain:" in remotes
    import yaml

    document = yaml.safe_load(remotes)
    document["population"]["domains"] = 1_000_000
    document["population"]["mx_per_domain"] = {100_000: 1.0}
    (tmp_path / "remotes.yaml").write_text(yaml.safe_dump(document))
    text = (
        (ROOT / "scenarios/force-tls-2024.yaml").read_text().replace("../topology/internet-2024.yaml", "remotes.yaml")
    )
    line = one_error_line(runner.invoke(app, ["validate", str(_what_if(tmp_path, text))]))
    assert "more than this machine's" in line and "population" in line


def test_validate_states_the_estimate():
    result = runner.invoke(app, ["validate", str(ROOT / "scenarios/article-force-tls.yaml")])
    assert result.exit_code == 0 and "estimate ~57,600 messages" in result.output


@pytest.mark.slow  # a sweep and its report: runs in CI (.ci/run)
def test_a_sweep_whose_axis_values_hold_dollars_runs_and_reports(tmp_path):
    experiment = tmp_path / "dollars.yaml"
    experiment.write_text(
        f"name: dollars\nbase: {ROOT / 'scenarios/article-baseline.yaml'}\n"
        "overrides: {run.duration: 1h}\n"
        "axes: {policy: {'$x^$ costs $5': {}, '$\\\\frac{a$': {}}}\nreplications: 1\n"
    )
    out = tmp_path / "results"
    result = runner.invoke(app, ["sweep", str(experiment), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert list(out.glob("*.png"))
