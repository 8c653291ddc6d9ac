"""``import postfix`` means what Postfix makes of a configuration (issue 18, items 6-8):
legacy parameters, per-site tables, default_transport, master.cf overrides, policy-map
keys matched as smtp_session.c matches them, and ``$name`` expansion in linear time."""

from __future__ import annotations

import pytest
import yaml
from cli_checks import one_error_line
from typer.testing import CliRunner
from worlds import remotes, scenario

from sim.cli import app
from sim.importers.postfix import import_postfix
from sim.importers.postfix_conf import parse_postconf
from sim.plan.build import build_plan

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _import(tmp_path, postconf: str, **tables: str):
    (tmp_path / "main.cf").write_text(postconf)
    paths = {}
    for name, text in tables.items():
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    imported = import_postfix(tmp_path / "main.cf", paths.get("policy"), paths.get("transport"), paths.get("per_site"))
    return imported, imported.document["servers"][0]["virtual_servers"][0]


# ------------------------------------------------------------------ 6. legacy parameters, transports


@pytest.mark.parametrize(
    ("settings", "level"),
    [
        ("smtp_use_tls = yes\n", "may"),
        ("smtp_enforce_tls = yes\n", "verify"),  # smtp_tls_enforce_peername defaults to yes
        ("smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n", "encrypt"),
        ("smtp_use_tls = yes\nsmtp_tls_security_level = none\n", "none"),  # the new parameter wins
        ("compatibility_level = 3.11\n", "may"),  # Postfix 3.11's default
        ("compatibility_level = 3.6\n", "none"),
    ],
)
def test_legacy_and_default_levels_mean_what_postfix_makes_of_them(tmp_path, settings, level):
    imported, vs = _import(tmp_path, "myhostname = mx.ours.example\n" + settings)
    assert vs["outbound_tls"] == level
    if "security_level" not in settings and "smtp_" not in settings:
        assert any("smtp_tls_security_level unset" in note for note in imported.assumed)


def test_default_transport_overrides_and_next_hops(tmp_path):
    imported, vs = _import(
        tmp_path,
        "default_transport = dane\n"
        "dane/unix/smtp_tls_security_level = dane\n"
        "relay/unix/smtp_tls_security_level = encrypt\n"
        "smtp_tls_security_level = may\n",
    )
    assert (vs["outbound_tls"], vs["dane"]) == ("may", "opportunistic")  # the dane service's -o override
    assert any("relay/unix/smtp_tls_security_level" in n and "another service" in n for n in imported.notes)
    imported, _ = _import(tmp_path, "default_transport = smtp:[relay.ours.example]:2525\n")
    default = imported.document["connectors"][0]
    assert (default["delivery"], default["smart_hosts"]) == ("smart_host", ["relay.ours.example"])
    imported, _ = _import(tmp_path, "default_transport = error:outbound mail disabled\n")
    assert any("bounces all mail for other domains" in n for n in imported.notes)


def test_settings_that_send_mail_another_way_are_listed_as_changing_the_prediction(tmp_path):
    imported, _ = _import(
        tmp_path,
        "sender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay\n"
        "sender_dependent_default_transport_maps = hash:/etc/postfix/sender_transport\n",
    )
    assert sum("which the what-if does not model" in note for note in imported.notes) == 2


def test_per_site_table_entries_become_policy_entries(tmp_path):
    per_site = "partner.example MUST\nloose.example MUST_NOPEERMATCH\nold.example NONE\nmaybe.example MAY\n"
    _, vs = _import(tmp_path, "smtp_tls_security_level = encrypt\n", per_site=per_site)
    # MAY is a wildcard a stronger global level overrides (smtp_session.c); NONE is not.
    assert vs["tls_policy"] == {"partner.example": "verify", "loose.example": "encrypt", "old.example": "none"}
    imported, vs = _import(
        tmp_path, "smtp_tls_policy_maps = hash:/etc/postfix/tls_policy\n", per_site="partner.example MUST\n"
    )
    assert "tls_policy" not in vs and any("smtp_tls_per_site is ignored" in n for n in imported.notes)


# ------------------------------------------------------------------ 7. policy-map keys


POLICY = """\
[relay.ours.example]:587  verify
[relay.ours.example]      encrypt
relay.ours.example        secure
relay.ours.example:587    secure
.partner.example          encrypt
partner.example           dane-only
dane.example              dane
"""


def test_policy_keys_match_next_hops_as_postfix_does(tmp_path):
    imported, vs = _import(tmp_path, "relayhost = [relay.ours.example]:587\n", policy=POLICY)
    assert vs["tls_policy"] == {
        "[relay.ours.example]": "verify",  # the relay's exact next hop
        ".partner.example": "encrypt",
        "partner.example": "dane-only",  # its meaning kept, not "may"
        "dane.example": "dane",
    }
    not_applied = [n for n in imported.notes if "not applied" in n]
    assert len(not_applied) == 3  # [relay] without :587, the bare name, relay:587
    # An MX-style relay name (no brackets) is looked up bare, as Postfix does.
    _, vs = _import(tmp_path, "relayhost = relay.ours.example\n", policy="relay.ours.example secure\n")
    assert vs["tls_policy"] == {"[relay.ours.example]": "secure"}
    _, vs = _import(tmp_path, "relayhost = relay.ours.example\n", policy=".ours.example encrypt\n")
    assert vs["tls_policy"] == {".ours.example": "encrypt", "[relay.ours.example]": "encrypt"}


def test_the_engine_applies_per_destination_dane_and_relay_entries(tmp_path):
    imported, _ = _import(tmp_path, "smtp_tls_security_level = may\nmyhostname = gw.ours.example\n", policy=POLICY)
    org = imported.document
    rem = remotes(
        partner_example="trusted", sub_partner_example="trusted", dane_example="trusted", other_example="none"
    )
    plan = build_plan(scenario(org, rem))
    source = org["servers"][0]["name"]
    queue = {d: plan.route(source, d).queues[0] for d in ("partner.example", "sub.partner.example", "dane.example")}
    assert (queue["partner.example"].policy.level.value, queue["partner.example"].policies.dane) == (
        "opportunistic",
        "mandatory",
    )
    assert queue["dane.example"].policies.dane == "opportunistic"
    assert queue["sub.partner.example"].policy.level.value == "required"  # .partner.example: subdomains
    assert queue["sub.partner.example"].policies.dane == "none"
    relayed, _ = _import(
        tmp_path, "relayhost = [relay.ours.example]:587\nmyhostname = gw.ours.example\n", policy=POLICY
    )
    relay_plan = build_plan(scenario(relayed.document, {**rem, "hosts": [{"host": "relay.ours.example"}]}))
    # Through the relay every lookup is [relay.ours.example]:587's: per-domain entries never apply.
    for domain in ("other.example", "partner.example"):
        queue = relay_plan.route(source, domain).queues[0]
        assert (queue.policy.level.value, queue.policies.dane) == ("verify", "none")


def test_a_bare_key_naming_a_smart_host_is_refused_when_loaded(tmp_path):
    from pydantic import ValidationError

    from sim.scenario.model import Organisation

    imported, _ = _import(tmp_path, "relayhost = [relay.ours.example]\n")
    document = imported.document
    document["servers"][0]["virtual_servers"][0]["tls_policy"] = {"relay.ours.example": "encrypt"}
    with pytest.raises(ValidationError, match=r"names a smart host: write \[relay.ours.example\]"):
        Organisation.model_validate(document)


# ------------------------------------------------------------------ 8. expansion, continuation, numbers


def test_parameters_expand_as_postfix_expands_them(tmp_path):
    (tmp_path / "main.cf").write_text(
        "myhostname = mx.ours.example\n"
        "mydestination = $myhostname, localhost.$mydomain, ${mydomain}\n"
        "virtual_mailbox_domains = hash:/etc/postfix/vdomains, extra.example\n"
        "stress =\n"
        "a = ${stress?{yes}:{no}}\n"
        "b = ${stress:calm}\n"
        "c = $(myhostname)\n"
    )
    conf = parse_postconf(tmp_path / "main.cf")
    assert conf.get("mydestination") == "mx.ours.example, localhost.ours.example, ours.example"
    assert (conf.get("a"), conf.get("b"), conf.get("c")) == ("no", "calm", "mx.ours.example")
    imported = import_postfix(tmp_path / "main.cf")
    assert imported.document["accepted_domains"] == [
        "mx.ours.example", "localhost.ours.example", "ours.example", "extra.example"
    ]  # fmt: skip
    assert any("hash:/etc/postfix/vdomains" in note for note in imported.notes)


def test_a_parameter_that_refers_to_itself_is_an_error_naming_it(tmp_path):
    (tmp_path / "main.cf").write_text("myhostname = $mydomain.x\nmydomain = ${myhostname}\n")
    line = one_error_line(invoke("import", "postfix", tmp_path / "main.cf", "--out", tmp_path / "out"))
    assert "main.cf" in line and "refers to itself" in line and "myhostname -> mydomain -> myhostname" in line


def test_continuation_lines_and_long_values_parse_in_linear_time(tmp_path):
    """200,000 continuation lines (276 s when each join copied the value so far)."""
    lines = ["smtpd_recipient_restrictions = permit_mynetworks,"] + [f"    check_{n}," for n in range(200_000)]
    (tmp_path / "main.cf").write_text("\n".join(lines) + "\n")
    conf = parse_postconf(tmp_path / "main.cf")
    assert conf.get("smtpd_recipient_restrictions").count("check_") == 200_000


def test_an_expansion_that_explodes_is_an_error(tmp_path):
    chain = "".join(f"p{n} = $p{n + 1} $p{n + 1}\n" for n in range(40)) + "p40 = x\nmydestination = $p0\n"
    (tmp_path / "main.cf").write_text(chain)
    line = one_error_line(invoke("import", "postfix", tmp_path / "main.cf", "--out", tmp_path / "out"))
    assert "expands past" in line


@pytest.mark.parametrize("value", ["²d", "9" * 5000, "٣d", "-1d"])
def test_numbers_are_ascii_digits_within_bounds(tmp_path, value):
    (tmp_path / "main.cf").write_text(f"maximal_queue_lifetime = {value}\n")
    line = one_error_line(invoke("import", "postfix", tmp_path / "main.cf", "--out", tmp_path / "out"))
    assert "main.cf: line 1: maximal_queue_lifetime" in line and "not a Postfix time" in line


def test_imported_configuration_validates_and_names_what_was_assumed(tmp_path):
    (tmp_path / "main.cf").write_text("myhostname = mx.ours.example\nmydestination = $myhostname\n")
    out = tmp_path / "out"
    assert invoke("import", "postfix", tmp_path / "main.cf", "--out", out).exit_code == 0
    text = (out / "topology.yaml").read_text()
    assert "# Assumed (not in the files):" in text and "smtp_tls_security_level unset" in text
    assert yaml.safe_load(text)["accepted_domains"] == ["mx.ours.example"]
