"""The bundled transport-policy what-ifs tell the story their header comments tell.

Seeded regression checks (seed 1); the mechanisms are pinned by exact tests in
test_policies.py, test_tlsrpt.py and test_calendar.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = sim.run(sim.load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
        return cache[name]

    return get


def test_mta_sts_enforce_strands_exchange_online_senders_while_the_good_mx_is_down(runs):
    result = runs("mta-sts-testing-to-enforce")
    senders = {row["sender"]: row for row in result.inbound_rows}
    # Exchange Online validates, cannot use mx1 (certificate for another name) nor mx2
    # (down 36 h): its users get their mail back after 24 h.
    assert senders["fabrikam.com"]["lost"] > 0
    # Postfix 3.11 validates too, but keeps the mail for 5 days: nothing lost.
    assert senders["woodgrovebank.com"]["lost"] == 0
    # Senders that do not validate MTA-STS deliver to mx1 all along.
    for name in ("adatum.com", "litware.com"):
        assert senders[name]["lost"] == 0 and senders[name]["queued_remote_at_end"] == 0
    received = dict(result.tlsrpt_received)
    modes = {
        p["policy"]["policy-string"][1]
        for doc in received.values()
        for p in doc["policies"]
        if p["policy"]["policy-type"] == "sts"
    }
    assert modes == {"mode: testing", "mode: enforce"}  # the calendar change shows in the reports


@pytest.mark.slow
def test_outbound_dane_verifies_some_and_defers_bogus_zones(runs):
    result = runs("dane-outbound-2026")
    verified = sum(row["delivered_verified"] for row in result.per_domain_rows)
    assert verified > 0
    assert result.summary_row["out_policy_refusals"] > 0  # bogus zones: no connection
    # A bogus zone's MX RRset: a validating (DANE) sender finds no MX at all (issue 20 s.3).
    bogus = [row for row in result.ndr_rows if "type=MX: Host not found, try again" in row["reason"]]
    assert bogus and {row["status"] for row in bogus} == {"4.4.3"}


def test_requiretls_messages_come_back_and_the_rest_flow(runs):
    result = runs("requiretls-rollout")
    statuses = {row["status"] for row in result.ndr_rows}
    assert {"5.7.10", "5.7.30"} <= statuses
    summary = result.summary_row
    returned = sum(row["count"] for row in result.ndr_rows if row["status"] in ("5.7.10", "5.7.30"))
    # About 5% of the messages were REQUIRETLS; nearly all of them come back.
    assert 0.03 * summary["out_messages"] < returned < 0.06 * summary["out_messages"]


def test_exo_partner_certificate_expiry_returns_mail_after_24_hours(runs):
    result = runs("exo-partner-tls")
    rows = {row["domain"]: row for row in result.per_domain_rows}
    assert rows["woodgrovebank.com"]["ndr"] > 0
    assert all(row["ndr"] == 0 for name, row in rows.items() if name != "woodgrovebank.com")
    [ndr] = [row for row in result.ndr_rows if row["domain"] == "woodgrovebank.com"]
    assert ndr["status"] == "4.4.7" and "4.7.320" in ndr["reason"]
    assert {name.split("!")[1] for name, _ in result.tlsrpt_sent} == {"fabrikam.com"}
