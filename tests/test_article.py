"""The Exchange 2003 TLS article's claims, on the bundled scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

pytestmark = pytest.mark.slow  # a whole module of long runs: CI runs it, the quick check does not

ROOT = Path(__file__).resolve().parent.parent
TLS_CAPABLE = {"fabrikam.com", "woodgrovebank.com", "adatum.com", "litware.com"}
CANNOT_TLS = {"oldsendmail.example", "brokentls.example"}
TWO_DAYS = 2 * 86400.0


@pytest.fixture(scope="module")
def results():
    out = {}
    for name in ("baseline", "force-tls", "tls-connectors", "workaround"):
        scenario = sim.load_scenario(ROOT / "scenarios" / f"article-{name}.yaml")
        out[name] = sim.run(scenario, trace=(name == "force-tls"))
    return out


def test_force_tls_bounces_only_domains_that_cannot_do_tls_with_4_4_7_after_two_days(results):
    result = results["force-tls"]
    ndr = result.ndr
    assert set(ndr["domain"]) == CANNOT_TLS
    assert set(ndr["status"]) == {"4.4.7"}
    accepted = {ident: t for t, ident, event, _ in result.trace if event == "accepted"}
    ended = [(t, ident) for t, ident, event, _ in result.trace if event in ("expired", "bounced")]
    assert ended
    assert all(t - accepted[ident] == pytest.approx(TWO_DAYS) for t, ident in ended)
    per_domain = result.per_domain.set_index("domain")
    for domain in TLS_CAPABLE:
        assert per_domain.loc[domain, "ndr"] == 0
        assert per_domain.loc[domain, "delivered_tls"] == per_domain.loc[domain, "delivered"] > 0
    assert result.summary_row["out_delivered_plaintext"] == 0


def test_force_tls_builds_queues_and_sends_delay_notices(results):
    row = results["force-tls"].summary_row
    assert row["peak_queue_depth"] > 1000
    assert row["out_delay_dsn"] > 0
    assert row["out_queued_at_end"] > 0


def test_workaround_bounces_nothing_and_keeps_tls_where_possible(results):
    result = results["workaround"]
    assert result.summary_row["out_ndr"] == 0
    per_domain = result.per_domain.set_index("domain")
    for domain in TLS_CAPABLE:
        assert per_domain.loc[domain, "delivered_tls"] == per_domain.loc[domain, "delivered"] > 0
    for domain in CANNOT_TLS:
        assert per_domain.loc[domain, "route"] == "no-tls-domains"
        assert per_domain.loc[domain, "delivered_plaintext"] == per_domain.loc[domain, "delivered"] > 0
    assert result.summary_row["out_delivered_tls"] == results["force-tls"].summary_row["out_delivered_tls"]


def test_baseline_sends_nothing_encrypted(results):
    row = results["baseline"].summary_row
    assert row["out_delivered_tls"] == 0
    assert row["out_ndr"] == 0
    assert row["out_delivered"] > 50000


def test_tls_connectors_encrypt_only_the_listed_partners(results):
    result = results["tls-connectors"]
    per_domain = result.per_domain.set_index("domain")
    assert result.summary_row["out_ndr"] == 0
    encrypted = set(per_domain.index[per_domain["delivered_tls"] > 0])
    assert encrypted == {"fabrikam.com", "woodgrovebank.com"}


def test_all_four_policies_see_the_same_traffic(results):
    counts = {name: r.per_domain.set_index("domain")["messages"].to_dict() for name, r in results.items()}
    assert len({tuple(sorted(c.items())) for c in counts.values()}) == 1
